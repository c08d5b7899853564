"""The engine on top of the database and the on-disk cache: start-up, new users, catch-up.

Start-up (:func:`build_engine`): connect, create missing tables, ingest the
bundled data into an empty database, load the frames, then either restore the
user-user model from the cache or fit it and save it. The cache covers users up
to its *watermark* (the largest user id it was fitted on); users added since
(ids above it) are appended from the database without a rebuild.

New users (:func:`add_user`) are written to the database and appended to the
matrix and index as one operation: the rows are committed first, then
published in memory; if publishing fails, a compensating transaction deletes
them, so neither is kept. User ids come from ``max(user_id) + 1`` under a lock
that spans processes (``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped
advisory lock on PostgreSQL), so ids are committed in increasing order and any
process can append them in order (:func:`catch_up`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa

from recommender.config import Settings, load_settings, redact_url
from recommender.core.matrix import IdIndex, build_rating_matrix
from recommender.core.profiling import PROFILER
from recommender.data import database as db
from recommender.errors import IndexCacheError, InvalidParameterError
from recommender.serving.cache import ModelCache
from recommender.serving.search import TitleSearch

if TYPE_CHECKING:
    from recommender.serving.engine import RecommenderEngine

_log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
#: Key of the PostgreSQL advisory lock that serialises user-id allocation.
USER_ID_LOCK = 0x616E6972  # "anir"
USER_SOURCES = ("dataset", "app")
#: Cache entry of the title search index (saved beside the models).
SEARCH = "search"


def _noop(stage: str, fraction: float) -> None:
    pass


def build_engine(settings: Settings | None = None, progress: Progress | None = None, *,
                 rebuild: bool = False, engine_class=None) -> RecommenderEngine:
    """A ready engine from ``settings`` (default: :func:`load_settings`).

    ``progress(stage, fraction)`` is called as start-up advances (fraction in
    [0, 1]). ``rebuild=True`` ignores the cache and refits (then saves).
    """
    if engine_class is None:
        from recommender.serving.engine import RecommenderEngine as engine_class
    settings = settings or load_settings()
    progress = progress or _noop
    started = time.perf_counter()
    info: dict = {"database": redact_url(settings.database_url),
                  "cache": str(settings.cache_dir)}

    progress("connect", 0.0)
    database = db.create_db_engine(settings.database_url)
    try:
        return _build(database, settings, progress, rebuild, engine_class, started, info)
    except sa.exc.SQLAlchemyError as exc:
        # Lost mid-start (server gone, connections cut): one clear line, no traceback.
        database.dispose()
        raise db.database_error(settings.database_url, "lost while starting", exc) from None


def _build(database: sa.Engine, settings: Settings, progress: Progress, rebuild: bool,
           engine_class, started: float, info: dict) -> RecommenderEngine:
    db.create_tables(database)
    info["dialect"] = database.dialect.name

    info["ingest_seconds"] = 0.0
    if db.count_anime(database) == 0:
        from recommender.data.ingest import ingest_bundled

        progress("ingest", 0.05)
        t0 = time.perf_counter()
        with PROFILER.stage("ingest"):
            ingest_bundled(database, on_progress=lambda f: progress("ingest", 0.05 + 0.45 * f))
        info["ingest_seconds"] = time.perf_counter() - t0

    progress("load", 0.5)
    t0 = time.perf_counter()
    cache = ModelCache(settings.cache_dir)
    params = settings.params
    watermark = None if rebuild else cache.watermark()
    if watermark is not None:
        cache.prefetch()
    with PROFILER.stage("load", memory=False):
        # Read before the ratings: a change after this point makes the saved
        # revision stale, so the next start re-reads instead of trusting it.
        revision = db.data_revision(database)
        anime = db.load_anime(database)
        data, newer = None, None
        if watermark is not None:
            data, newer = _cached_data(database, cache, anime, revision, watermark, info)
        ratings = None
        if data is None:
            ratings = db.load_ratings(database)
    info["load_seconds"] = time.perf_counter() - t0

    progress("index", 0.6)
    t0 = time.perf_counter()
    engine = None
    if watermark is not None:
        if data is None:
            data = engine_class.training_data(anime, ratings[ratings["user_id"] <= watermark])
            newer = ratings[ratings["user_id"] > watermark]
        try:
            with PROFILER.stage("title index"):
                search = _load_search(cache, data, params, info)
            with PROFILER.stage("index load"):
                knn = cache.load_knn(data, params)
            progress("models", 0.8)
            with PROFILER.stage("models load"):
                models = _load_models(cache, data, params, engine_class)
            engine = engine_class.fit(data, params, knn=knn, models=models, search=search)
            info["index"] = "loaded"
            info["models_loaded"] = sorted(models)
        except IndexCacheError as exc:
            _log.warning("rebuilding the index: %s", exc)
            info["cache_problem"] = str(exc)
        finally:
            cache.forget_prefetched()
    elif not rebuild and cache.manifest_path.exists():
        info["cache_problem"] = "unreadable manifest"
    if engine is None:
        if ratings is None:
            ratings = db.load_ratings(database)
        data = engine_class.training_data(anime, ratings)
        del ratings
        progress("models", 0.7)
        engine = engine_class.fit(data, params)
        info["index"] = "built"
    engine.data_revision = revision
    _attach(engine, database, settings, cache)
    caught_up = 0
    if info["index"] == "loaded":
        caught_up = _publish(engine, newer)
    refitted = info["index"] == "loaded" and (
        set(info["models_loaded"]) != set(engine.models) or info["search_index"] != "loaded")
    # Models loaded, but the matrix was read from the database (an older cache, or
    # a new revision with the same data): record the revision for the next start.
    restamp = info["index"] == "loaded" and cache.recorded_revision() != revision
    if info["index"] == "built" or caught_up or refitted or restamp:
        progress("save", 0.95)
        try:
            save_cache(engine)
        except OSError as exc:  # a read-only disk must not stop the service
            _log.warning("cannot save the index cache: %s", exc)
    info["build_seconds"] = time.perf_counter() - t0
    info["users_caught_up"] = caught_up
    info["total_seconds"] = time.perf_counter() - started
    engine.build_info.update(info)
    progress("ready", 1.0)
    return engine


def _attach(engine: RecommenderEngine, database: sa.Engine, settings: Settings,
            cache: ModelCache) -> None:
    engine.database = database
    engine.settings = settings
    engine.cache = cache
    engine._user_lock = threading.Lock()


def save_cache(engine: RecommenderEngine) -> None:
    """Persist the user-user model and the other fitted models under the cache directory."""
    with engine._write_lock:
        engine.cache.save_knn(engine.data, engine.params, engine.knn,
                              {**engine.models, SEARCH: engine.search_index},
                              revision=getattr(engine, "data_revision", None))


def _load_search(cache: ModelCache, data, params, info: dict) -> TitleSearch:
    """The title index read back from the cache, or built when it cannot be read."""
    try:
        search = TitleSearch.from_state(data.anime, cache.load_state(SEARCH, data, params))
        info["search_index"] = "loaded"
    except (IndexCacheError, ValueError, KeyError, TypeError) as exc:
        _log.info("building the title index: %s", exc)
        search = TitleSearch(data.anime)
        info["search_index"] = "built"
    return search


def _cached_data(database: sa.Engine, cache: ModelCache, anime: pd.DataFrame, revision: str,
                 watermark: int, info: dict) -> tuple:
    """The cached training data and the ratings of users above ``watermark``.

    (None, None) when the cache's matrix no longer matches the database (its
    revision changed, or the number of ratings up to the watermark); the
    caller then reads every rating.
    """
    if cache.recorded_revision() != revision:
        info["matrix"] = "read from the database (the data changed since the cache was saved)"
        return None, None
    options = ({"isolation_level": "REPEATABLE READ"} if database.dialect.name == "postgresql"
               else {})
    with database.connect().execution_options(**options) as conn:
        # One snapshot for both reads (SQLite's read transaction is one already),
        # so a user committed meanwhile is in both or in neither. A range count of
        # the rows up to the watermark would be ten times slower on SQLite.
        total = db.count_ratings(conn)
        newer = db.ratings_after(conn, watermark)
    covered = total - len(newer)
    try:
        data = cache.load_data(anime, revision, covered)
    except IndexCacheError as exc:
        _log.info("reading every rating: %s", exc)
        info["matrix"] = f"read from the database ({exc})"
        return None, None
    info["matrix"] = "loaded from the cache"
    return data, newer


def _load_models(cache: ModelCache, data, params, engine_class) -> dict:
    """Fitted scorers read back from the cache; a model that cannot be read is refitted."""
    from recommender.models.content import ContentTfidf
    from recommender.models.ease import EASE
    from recommender.models.mf import ALSFactorization

    kinds = {"content": ContentTfidf, "mf": ALSFactorization, "ease": EASE}
    models = {}
    for name in engine_class.PERSISTED_MODELS:
        try:
            models[name] = kinds[name].from_state(cache.load_state(name, data, params), data)
        except (IndexCacheError, ValueError, KeyError, TypeError) as exc:
            _log.warning("refitting the %s model: %s", name, exc)
    return models


# --------------------------------------------------------------------------- new users
def _rows(engine: RecommenderEngine, frame: pd.DataFrame):
    """User ids (sorted) and their raw rating rows for ``frame`` of ratings."""
    users = IdIndex.from_ids(frame["user_id"].to_numpy(np.int64))
    items = engine.data.items.numbers(frame["anime_id"].to_numpy(np.int64))
    keep = items >= 0
    rows = build_rating_matrix(users.numbers(frame["user_id"].to_numpy(np.int64))[keep],
                               items[keep], frame["rating"].to_numpy(np.float32)[keep],
                               (len(users), len(engine.data.items)))
    return users.ids, rows


def _publish(engine: RecommenderEngine, frame: pd.DataFrame) -> int:
    """Append the users in ``frame`` to matrix and index, all or nothing; returns how many."""
    if frame.empty:
        return 0
    ids, rows = _rows(engine, frame)
    known = engine.user_ids()
    if len(known) and ids[0] <= known[-1]:
        raise InvalidParameterError(
            f"user {int(ids[0])} is not above the largest known user {int(known[-1])}")
    knn = engine.knn
    data_before, state_before = engine._data, knn._state
    try:
        engine.add_rows(ids, rows)
    except BaseException:
        # Labels already in the index for these rows are harmless: queries drop
        # labels past the state's last row, and a later add of the row replaces them.
        knn._state, engine._data = state_before, data_before
        raise
    return len(ids)


def _new_user_ratings(engine: RecommenderEngine, liked) -> pd.DataFrame:
    profile, _unknown = engine.profile_from_liked(liked)
    ratings = profile.ratings
    if not np.all(ratings == np.round(ratings)):
        raise InvalidParameterError("ratings of a saved user must be whole numbers "
                                    "(-1 = watched, or 1..10)")
    return pd.DataFrame({
        "anime_id": engine.data.items.ids[profile.item_idx].astype(np.int64),
        "rating": ratings.astype(np.int16),
    })


def add_user(engine: RecommenderEngine, liked, *, source: str = "app") -> int:
    """Save a new user with ``liked`` and add them to the index; returns their user id.

    See :meth:`RecommenderEngine.add_user`.
    """
    if source not in USER_SOURCES:
        raise InvalidParameterError(f"source must be one of {', '.join(USER_SOURCES)}")
    mine = _new_user_ratings(engine, liked)
    database: sa.Engine = engine.database
    with engine._user_lock:
        known = engine.user_ids()
        mem_max = int(known[-1]) if len(known) else 0
        try:
            with PROFILER.stage("add user: database"), db.write_transaction(database) as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(
                        sa.bindparam("key", USER_ID_LOCK, type_=sa.BigInteger))))
                # Users other processes committed since we last looked: they must be
                # appended before ours, since rows are kept in id order.
                others = db.ratings_after(conn, mem_max)
                user_id = max(db.max_user_id(conn) + 1, mem_max + 1, db.APP_USER_ID_START)
                conn.execute(sa.insert(db.User).values(
                    user_id=user_id, source=source, created_at=datetime.now(UTC)))
                conn.execute(sa.insert(db.Rating), [
                    {"user_id": user_id, "anime_id": int(a), "rating": int(r)}
                    for a, r in zip(mine["anime_id"], mine["rating"])])
        except sa.exc.SQLAlchemyError as exc:
            # Nothing reached memory yet, so the engine is as it was. If the
            # connection died during COMMIT the row may exist after all; the
            # database is the truth and catch_up (or the next start) appends it.
            raise db.database_error(database.url.render_as_string(hide_password=False),
                                    "the new user was not saved", exc) from None
        frame = pd.concat([others, mine.assign(user_id=user_id)[["user_id", "anime_id", "rating"]]],
                          ignore_index=True)
        try:
            hook = getattr(engine, "_before_index_add", None)
            if hook is not None:
                hook(user_id)
            with PROFILER.stage("add user: index"):
                _publish(engine, frame)
        except BaseException:
            try:
                _delete_user(database, user_id)
            except sa.exc.SQLAlchemyError as exc:  # the original error matters more
                _log.warning("could not delete user %d after a failed index add (%s); "
                             "it is appended on the next catch-up", user_id, exc)
            if len(others):
                _publish_quietly(engine, others)
            raise
    return user_id


def _publish_quietly(engine: RecommenderEngine, frame: pd.DataFrame) -> None:
    try:
        _publish(engine, frame)
    except Exception as exc:  # the next catch_up retries
        _log.warning("could not append users committed by another process: %s", exc)


def _delete_user(database: sa.Engine, user_id: int) -> None:
    """The compensating transaction: remove a user whose index add failed."""
    with db.write_transaction(database) as conn:
        conn.execute(sa.delete(db.Rating).where(db.Rating.user_id == user_id))
        conn.execute(sa.delete(db.User).where(db.User.user_id == user_id))
        # Another process may already have cached this user.
        db.bump_revision(conn)


def catch_up(engine: RecommenderEngine, *, min_interval: float = 0.0) -> int:
    """Append users the database has above the largest id in memory; returns how many.

    With ``min_interval`` > 0 the database is asked at most once per that many
    seconds (callers on every page view pass it, so replicas sharing one database
    see each other's new users within that delay without a query per request).
    """
    now = time.monotonic()
    last = getattr(engine, "_caught_up_at", None)
    if min_interval > 0 and last is not None and now - last < min_interval:
        return 0
    engine._caught_up_at = now
    with engine._user_lock:
        known = engine.user_ids()
        mem_max = int(known[-1]) if len(known) else 0
        try:
            with engine.database.connect() as conn:
                frame = db.ratings_after(conn, mem_max)
        except sa.exc.SQLAlchemyError as exc:
            raise db.database_error(engine.database.url.render_as_string(hide_password=False),
                                    "cannot read new users", exc) from None
        return _publish(engine, frame)
