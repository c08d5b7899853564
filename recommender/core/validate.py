"""Checks of values at the package's boundary: ids, counts and weights.

Every public entry point (engine, CLI, dashboard, API) passes what it was given
through these, so nothing reaches numpy, SQL or hnswlib unchecked: an id too
large for int64, a boolean posing as 1, a float posing as an id, or a digit
string in another script all become the package's own errors.
"""

from __future__ import annotations

import math
import re
from numbers import Integral, Real

import numpy as np

from recommender.errors import InvalidParameterError, UnknownAlgorithmError

#: Ids are stored in 32-bit columns by the database; larger ones can exist nowhere.
MAX_ID = 2**31 - 1
_ASCII_DIGITS = re.compile(r"\s*\+?([0-9]{1,19})\s*\Z")


def parse_id(value: object) -> int | None:
    """``value`` as a whole-number id, or None when it is not one.

    Accepts Python and numpy integers (not booleans) and strings of ASCII
    digits with optional surrounding space. Floats are refused (``2.9`` is not
    user 2), as are ``"1_0"``, non-ASCII digits and signs other than ``+``.
    Values outside 0..2**63-1 are None too (no such id can exist).
    """
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (Integral, np.integer)):
        number = int(value)
    elif isinstance(value, str):
        match = _ASCII_DIGITS.match(value)
        if match is None:
            return None
        number = int(match.group(1))
    else:
        return None
    return number if 0 <= number < 2**63 else None


def whole_number(value: object, name: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high]; :class:`InvalidParameterError` otherwise.

    Integral floats (``10.0``) are accepted, as a JSON client may send them.
    """
    if isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, (Integral, np.integer)):
        number = int(value)
    elif isinstance(value, (Real, np.floating)) and math.isfinite(float(value)) \
            and float(value).is_integer():
        number = int(value)
    else:
        raise InvalidParameterError(f"{name} must be a whole number, got {_short(value)}")
    if not low <= number <= high:
        raise InvalidParameterError(f"{name} must be between {low} and {high}, got {number}")
    return number


def unit_weight(value: object, name: str = "weight") -> float:
    """``value`` as a float in [0, 1]; :class:`InvalidParameterError` otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.floating)):
        raise InvalidParameterError(f"{name} must be a number in [0, 1], got {_short(value)}")
    number = float(value)
    if not 0.0 <= number <= 1.0:  # NaN fails this too
        raise InvalidParameterError(f"{name} must be in [0, 1], got {_short(value)}")
    return number


def choice(value: object, name: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed`` (strings only); else :class:`InvalidParameterError`."""
    if not isinstance(value, str) or value not in allowed:
        raise UnknownAlgorithmError(
            f"unknown {name} {_short(value)}; choose one of {', '.join(allowed)}")
    return value


def _short(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about hostile input."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"
