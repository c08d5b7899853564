"""The package's own exceptions, in one place.

Every error the public API raises on bad input is a :class:`RecommenderError`.
Each also subclasses the built-in that an existing ``except`` clause would
expect (``KeyError`` for an unknown id, ``ValueError`` for a bad value), as
scikit-learn's ``NotFittedError`` does, so callers may catch either.
"""

from __future__ import annotations


class RecommenderError(Exception):
    """Base class of every error this package raises on purpose."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else self.__class__.__name__


class UnknownUserError(RecommenderError, KeyError):
    """A ``user_id`` that the engine does not know."""

    def __init__(self, message: str, *, user_id: int | None = None):
        super().__init__(message)
        #: The id asked for, when it was a whole number at all.
        self.user_id = user_id


class UnknownAnimeError(RecommenderError, KeyError):
    """An anime id or title that the catalogue does not have."""


class EmptyInputError(RecommenderError, ValueError):
    """A list that is empty, or holds nothing the engine knows."""


class InvalidParameterError(RecommenderError, ValueError):
    """A parameter outside its allowed range (``n``, ``k``, ``weight``, a rating...)."""


class UnknownAlgorithmError(InvalidParameterError):
    """An ``algorithm`` name the engine does not offer."""


class DataFormatError(RecommenderError, ValueError):
    """A data file or frame that is not in the expected format.

    The message names the file, the line and the problem.
    """


class DatabaseError(RecommenderError, RuntimeError):
    """The database cannot be reached or used; the message names the setting."""


class ConfigurationError(RecommenderError, ValueError):
    """A setting (environment variable or ``.env`` entry) with a bad value."""


class IndexCacheError(RecommenderError, RuntimeError):
    """A persisted index or model that cannot be used (corrupt, truncated, stale)."""


class QuotaExceededError(RecommenderError, PermissionError):
    """A session asked for more than its share (e.g. too many new users)."""


class AdminKeyError(RecommenderError, PermissionError):
    """A maintenance action without the right admin key (``SECRET_KEY``), or with none set."""


class APIKeyError(RecommenderError, PermissionError):
    """An HTTP API write with a wrong key, or while writes are disabled (no ``API_KEY``)."""


class MissingAPIKeyError(APIKeyError):
    """A write through the HTTP API without the ``X-API-Key`` header."""


class EngineStartingError(RecommenderError, RuntimeError):
    """The engine is still being built or loaded; ask again shortly."""


class ModelPreparingError(EngineStartingError):
    """The engine serves, but the named model is still being fitted in the background."""


class RequestTooLargeError(InvalidParameterError):
    """A request body over the HTTP API's size limit."""


class SparkUnavailableError(RecommenderError, RuntimeError):
    """Distributed training asked for, but pyspark is not installed or Spark cannot start."""
