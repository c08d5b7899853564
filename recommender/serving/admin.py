"""Maintenance actions behind the admin key (``SECRET_KEY``).

The dashboard shows these actions only when ``settings.secret_key`` is set, asks
for the key, and calls them with what was typed; every action checks the key
again (:func:`check_admin_key`, constant-time) so a page cannot forget to.

Each action that changes what the engine was built from returns a NEW engine,
built by :meth:`RecommenderEngine.from_settings` on the same settings: that is
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

import sqlalchemy as sa

from recommender.data import database as db
from recommender.errors import AdminKeyError

if TYPE_CHECKING:
    from recommender.config import Settings
    from recommender.data.ingest import IngestReport
    from recommender.serving.engine import RecommenderEngine

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


def _settings(engine: RecommenderEngine) -> Settings:
    engine._require_database()
    return engine.settings


def reingest_bundled(engine: RecommenderEngine, key, progress=None
                     ) -> tuple[IngestReport, RecommenderEngine]:
    """Ingest the bundled data again (rows already present are skipped).

    Returns the report and the engine to use from now on: a new one when rows
    were added, else ``engine`` itself.
    """
    from recommender.data.ingest import ingest_bundled

    settings = _settings(engine)
    require_admin_key(settings, key)
    report = ingest_bundled(engine.database)
    if not (report.anime_added or report.users_added or report.ratings_added):
        return report, engine
    return report, type(engine).from_settings(settings, progress)


def rebuild_index(engine: RecommenderEngine, key, progress=None) -> RecommenderEngine:
    """Refit every model from the database and save the cache; returns the new engine."""
    settings = _settings(engine)
    require_admin_key(settings, key)
    return type(engine).from_settings(settings, progress, rebuild=True)


def delete_app_users(engine: RecommenderEngine, key, progress=None
                     ) -> tuple[int, RecommenderEngine]:
    """Delete every user created in the app (``source = "app"``) and their ratings.

    One transaction, under the same cross-process lock as ``add_user`` so no new
    user is half-written meanwhile. Returns how many users were deleted and a new
    engine built from the database (the cache is reused when it predates those
    users, else rebuilt).
    """
    from recommender.serving.startup import USER_ID_LOCK

    settings = _settings(engine)
    require_admin_key(settings, key)
    try:
        with engine._user_lock, db.write_transaction(engine.database) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(
                    sa.bindparam("key", USER_ID_LOCK, type_=sa.BigInteger))))
            app_users = sa.select(db.User.user_id).where(db.User.source == "app")
            conn.execute(sa.delete(db.Rating).where(db.Rating.user_id.in_(app_users)))
            deleted = conn.execute(sa.delete(db.User).where(db.User.source == "app")).rowcount
            db.bump_revision(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise db.database_error(settings.database_url, "app users were not deleted",
                                exc) from None
    _log.info("deleted %d app-created users", deleted)
    return int(deleted), type(engine).from_settings(settings, progress)
