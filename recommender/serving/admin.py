"""Maintenance actions behind the admin key (``SECRET_KEY``).

The dashboard shows these actions only when ``settings.secret_key`` is set, asks
for the key, and calls them with what was typed; every action checks the key
again (:func:`check_admin_key`, constant-time) so a page cannot forget to.

Each action that changes what the engine was built from returns a NEW engine,
built by :meth:`RecommenderEngine.from_settings` on the given settings: that is
the simplest way to be sure memory equals the database again. The caller
replaces the engine it shares (in Streamlit: clear the ``st.cache_resource``
of ``get_engine`` and store the returned one). The old engine stays usable for
queries already running but must not take new users. Other processes sharing
the database should be restarted after :func:`delete_app_users`.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING

from recommender.config import Settings
from recommender.data import database as db
from recommender.errors import AdminKeyError
from recommender.serving.engine import RecommenderEngine

if TYPE_CHECKING:
    from recommender.data.ingest import IngestReport

_log = logging.getLogger(__name__)


def admin_enabled(settings: Settings) -> bool:
    """True when a ``SECRET_KEY`` is set, i.e. when maintenance actions may be shown."""
    return bool(settings.secret_key)


def check_admin_key(settings: Settings, supplied) -> bool:
    """True when ``supplied`` equals ``settings.secret_key``; False when no key is set.

    The comparison takes the same time wherever the strings differ
    (``hmac.compare_digest``), so the key cannot be guessed a character at a time.
    """
    secret = settings.secret_key
    if not secret or not isinstance(supplied, str) or not supplied:
        return False
    return hmac.compare_digest(supplied.encode("utf-8"), secret.encode("utf-8"))


def require_admin_key(settings: Settings, supplied) -> None:
    """Raise :class:`AdminKeyError` unless ``supplied`` is the admin key."""
    if not admin_enabled(settings):
        raise AdminKeyError("maintenance is disabled: SECRET_KEY is not set")
    if not check_admin_key(settings, supplied):
        _log.warning("a maintenance action was refused: wrong admin key")
        raise AdminKeyError("wrong admin key")


def reingest_bundled(settings: Settings, key, progress=None, *,
                     current: RecommenderEngine | None = None
                     ) -> tuple[IngestReport, RecommenderEngine | None]:
    """Ingest the bundled data again (rows already present are skipped).

    Returns the report and the engine to use from now on: a new one when rows
    were added, else ``current``.
    """
    from recommender.data.ingest import ingest_bundled

    require_admin_key(settings, key)
    database = db.create_db_engine(settings.database_url)
    try:
        report = ingest_bundled(database)
    finally:
        database.dispose()
    if not (report.anime_added or report.users_added or report.ratings_added):
        return report, current
    return report, RecommenderEngine.from_settings(settings, progress)


def rebuild_index(settings: Settings, key, progress=None) -> RecommenderEngine:
    """Refit every model from the database and save the cache; returns the new engine."""
    require_admin_key(settings, key)
    return RecommenderEngine.from_settings(settings, progress, rebuild=True)


def delete_app_users(engine: RecommenderEngine, settings: Settings, key, progress=None
                     ) -> tuple[int, RecommenderEngine]:
    """Delete every user created in the app (``source = "app"``) and their ratings.

    ``engine`` is the running engine, whose user store holds the lock that
    ``add_user`` takes, so no new user is half-written meanwhile. Returns how
    many users were deleted and a new engine built from the database (the
    cache is reused when it predates those users, else rebuilt).
    """
    require_admin_key(settings, key)
    deleted = engine.users.delete_app_users()
    return deleted, RecommenderEngine.from_settings(settings, progress)
