"""The HTTP API's own settings, read from the environment (and ``.env``) like the engine's.

- ``API_KEY``: the key a client sends as ``X-API-Key`` to create users. Unset or
  empty, writes are disabled (403), never open.
- ``CORS_ORIGINS``: comma-separated origins a browser page may call the API from
  (default: none, so no cross-origin page can read the answers).
- ``API_WRITES_PER_MINUTE``: new users one client (by address) may create per
  minute in one worker process (default 30; 0 disables writes).
- ``API_MAX_BODY_BYTES``: the largest request body (default 256 KiB; a list of
  the engine's 5,000 anime with ratings is about 70 KiB).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from recommender.config import load_environ
from recommender.core.validate import parse_id
from recommender.errors import ConfigurationError

DEFAULT_WRITES_PER_MINUTE = 30
DEFAULT_MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class ApiSettings:
    """What the API reads besides the engine's settings; the key is never shown by ``repr``."""

    api_key: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    writes_per_minute: int = DEFAULT_WRITES_PER_MINUTE
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Threads for CPU-bound work (default: the cores this process may use).
    threads: int = field(default_factory=lambda: available_cores())

    @property
    def writes_enabled(self) -> bool:
        return bool(self.api_key) and self.writes_per_minute > 0


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    value = parse_id(raw)
    if value is None:
        raise ConfigurationError(f"{name} must be a whole number >= 0, got {raw[:40]!r}")
    return value


def load_api_settings(environ: Mapping[str, str] | None = None) -> ApiSettings:
    """:class:`ApiSettings` from ``environ`` (default: the environment after ``.env``)."""
    if environ is None:
        environ = load_environ()
    origins = tuple(o.strip().rstrip("/") for o in (environ.get("CORS_ORIGINS") or "").split(",")
                    if o.strip())
    return ApiSettings(
        api_key=(environ.get("API_KEY") or "").strip() or None,
        cors_origins=origins,
        writes_per_minute=_count(environ, "API_WRITES_PER_MINUTE", DEFAULT_WRITES_PER_MINUTE),
        max_body_bytes=max(1024, _count(environ, "API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
    )
