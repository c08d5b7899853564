"""Start-up: the engine's parts from the database and the on-disk cache.

:func:`start` connects, creates missing tables, ingests the bundled data into
an empty database, then takes the matrix and every model it can from the
cache and fits the rest (see ``serving.cache`` for what "can" means). The
cache covers users up to its *watermark* (the largest user id it was saved
with); users added since (ids above it) are appended without a rebuild. It
returns :class:`~recommender.serving.build.EngineParts` and never builds the
engine itself, so the engine depends on start-up and not the other way round.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import pandas as pd
import sqlalchemy as sa

from recommender.config import EngineParams, Settings, load_settings
from recommender.core.profiling import PROFILER
from recommender.core.redact import redact_url
from recommender.core.types import Scorer, Snapshot, TrainingData
from recommender.data import database as db
from recommender.errors import IndexCacheError
from recommender.models import registry
from recommender.models.user_knn import UserKNN
from recommender.serving.build import EngineParts, build_parts, training_data
from recommender.serving.cache import ModelCache
from recommender.serving.search import TitleSearch
from recommender.serving.users import UserStore, grown

_log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
#: What a cached model may fail with when it is read back; each means "refit it".
_RESTORE_ERRORS = (IndexCacheError, ValueError, KeyError, TypeError, RuntimeError, MemoryError)


#: Where each stage of a first start sits on the progress bar: its measured share of a
#: cold start on the bundled data (2 cores: ingest 12 s, reading 2 s, fitting every
#: model 70 s of 80 s; a warm start only reads and loads).
INGEST, READ, SAVE = 0.15, 0.03, 0.02


def _fitting(progress: Progress):
    """Fit progress (see ``registry.FitProgress``) on the bar, each model with its share."""
    low, high = INGEST + READ, 1.0 - SAVE

    def report(label: str, done: float, share: float) -> None:
        progress(f"fitting {label} (about {share * (high - low):.0%} of a first start)",
                 low + done * (high - low))
    return report


def _noop(stage: str, fraction: float) -> None:
    pass


def start(settings: Settings | None = None, progress: Progress | None = None, *,
          rebuild: bool = False, defer_learned: bool = False) -> EngineParts:
    """The parts of a ready engine for ``settings`` (default: :func:`load_settings`).

    ``progress(stage, fraction)`` is called as start-up advances (fraction in
    [0, 1]). ``rebuild=True`` ignores the cache and refits (then saves).
    ``defer_learned=True`` leaves learned models that need fitting to a background
    fit (``parts.deferred``), which also saves the cache; nothing is saved here then.
    """
    settings = settings or load_settings()
    progress = progress or _noop
    started = time.perf_counter()
    info: dict = {"database": redact_url(settings.database_url),
                  "cache": str(settings.cache_dir)}
    progress("connecting to the database", 0.0)
    database = db.create_db_engine(settings.database_url)
    try:
        parts = _start(database, settings, progress, rebuild, info, defer_learned)
        parts.settings = settings
    except db.DRIVER_ERRORS as exc:
        # Lost mid-start (server gone, connections cut): one clear line, no traceback.
        database.dispose()
        raise db.database_error(settings.database_url, "lost while starting", exc) from None
    info["total_seconds"] = time.perf_counter() - started
    parts.info.update(info)
    progress("ready", 1.0)
    return parts


def _start(database: sa.Engine, settings: Settings, progress: Progress, rebuild: bool,
           info: dict, defer: bool) -> EngineParts:
    db.create_tables(database)
    info["dialect"] = database.dialect.name
    info["ingest_seconds"] = 0.0
    if db.count_anime(database) == 0:
        from recommender.data.ingest import ingest_bundled

        label = f"loading the bundled data into the database (first start only, {INGEST:.0%})"
        progress(label, 0.0)
        t0 = time.perf_counter()
        with PROFILER.stage("ingest"):
            ingest_bundled(database, on_progress=lambda f: progress(label, INGEST * f))
        info["ingest_seconds"] = time.perf_counter() - t0

    progress("reading the ratings", INGEST)
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

    progress("loading the saved models" if watermark is not None else "preparing the models",
             INGEST + READ)
    t0 = time.perf_counter()
    parts = None
    if watermark is not None:
        if data is None:
            data = training_data(anime, ratings[ratings["user_id"] <= watermark])
            newer = ratings[ratings["user_id"] > watermark]
        try:
            parts = _from_cache(cache, data, params, progress, info, defer)
        except IndexCacheError as exc:
            _log.warning("refitting every model: %s", exc)
            info["cache_problem"] = str(exc)
        finally:
            cache.forget_prefetched()
    elif not rebuild and cache.manifest_path.exists():
        info["cache_problem"] = "unreadable manifest"
    if parts is None:
        if ratings is None:
            ratings = db.load_ratings(database)
        data = training_data(anime, ratings)
        del ratings
        parts = build_parts(data, params, progress=_fitting(progress), defer_learned=defer)
        info.update(index="built", models_loaded=[], search_index="built")
        newer = None
    caught_up = 0
    if newer is not None and not newer.empty:
        before = parts.snapshot.n_users
        parts.snapshot = grown(parts.snapshot, _knn(parts.models), newer)
        caught_up = parts.snapshot.n_users - before
    parts.users, parts.cache, parts.revision = UserStore(database), cache, revision
    refitted = set(registry.persisted(parts.models)) - set(info["models_loaded"]) - {"user-user"}
    info["deferred"] = list(parts.deferred)
    # Models loaded, but the matrix was read from the database (an older cache, or
    # a new revision with the same data): record the revision for the next start.
    restamp = cache.recorded_revision() != revision
    # A background fit saves everything once it has published its models.
    if not parts.deferred and (info["index"] == "built" or caught_up or refitted
                               or info["search_index"] != "loaded" or restamp):
        progress("saving the models for the next start", 1.0 - SAVE)
        try:
            save(cache, parts.params, parts.snapshot, parts.models, parts.search, revision)
        except OSError as exc:  # a read-only disk must not stop the service
            _log.warning("cannot save the model cache: %s", exc)
            info["cache_save_problem"] = str(exc)
    info["build_seconds"] = time.perf_counter() - t0
    info["users_caught_up"] = caught_up
    return parts


def _knn(models: Mapping[str, Scorer]) -> UserKNN:
    knn = models["user-user"]
    if not isinstance(knn, UserKNN):
        raise TypeError("the user-user algorithm must be a UserKNN")
    return knn


def save(cache: ModelCache, params: EngineParams, snapshot: Snapshot,
         models: Mapping[str, Scorer], search: TitleSearch, revision: str | None) -> None:
    """Persist the snapshot, every persisted model (with its fit key) and the title index."""
    persisted = registry.persisted(models)
    cache.save(snapshot, persisted, {name: params.fit_key(name) for name in persisted},
               search, revision=revision)


def _from_cache(cache: ModelCache, data: TrainingData, params: EngineParams,
                progress: Progress, info: dict, defer: bool) -> EngineParts:
    """Parts from the cached models that fit ``data`` and ``params``; the rest refitted.

    Raises :class:`IndexCacheError` when the cache was saved on other data.
    """
    with PROFILER.stage("title index"):
        search = _load_search(cache, data, info)
    with PROFILER.stage("index load"):
        rows = cache.load_rows(data)
    progress("loading the saved models", INGEST + READ + 0.05)
    restored: dict[str, Scorer] = {}
    problems = []
    with PROFILER.stage("models load"):
        for algorithm in registry.enabled(params.use_models, params.use_ranker):
            if not algorithm.persisted:
                continue
            name = algorithm.name
            try:
                state = cache.load_state(name, data, params.fit_key(name))
                restored[name] = algorithm.restore(state, data, params.model(name))
            except _RESTORE_ERRORS as exc:
                _log.info("refitting the %s model: %s", name, exc)
                problems.append(f"{name}: {exc}")
    if "user-user" not in restored:
        rows = None  # the cached vectors belong to the cached projection
    parts = build_parts(data, params, restored=restored, rows=rows, search=search,
                        progress=_fitting(progress), defer_learned=defer)
    info["index"] = "loaded" if "user-user" in restored else "built"
    info["models_loaded"] = sorted(set(restored) - {"user-user"})
    if problems:
        info["cache_problem"] = "; ".join(problems)
    return parts


def _load_search(cache: ModelCache, data: TrainingData, info: dict) -> TitleSearch:
    """The title index read back from the cache, or built when it cannot be read."""
    try:
        search = TitleSearch.from_state(data.anime, cache.load_state("search", data, {}))
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
    try:
        data = cache.load_data(anime, revision, total - len(newer))
    except IndexCacheError as exc:
        _log.info("reading every rating: %s", exc)
        info["matrix"] = f"read from the database ({exc})"
        return None, None
    info["matrix"] = "loaded from the cache"
    return data, newer
