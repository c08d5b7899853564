"""Train the "mf" model with Spark MLlib's ALS, for ratings past one machine.

``python -m recommender train-mf --spark local[2]`` (or a cluster master URL)
reads the ratings from the configured database, trains Spark's implicit ALS,
and writes the factors into the model cache in the "mf" model's own state
format under the "mf" fit key; the next start loads them like any cached model
and serving never imports pyspark. pyspark is an optional extra
(``requirements-spark.txt``) and is imported only inside :func:`train_spark_als`.

The confidence weighting is the ``mf`` model's. Spark's implicit ALS reads a
rating ``r`` as preference ``1 if r > 0 else 0`` with confidence
``1 + alpha * |r|`` (``ALS.computeFactors`` in Spark's source), and implicit
reads a negative confidence ``c`` as preference 0 with confidence ``|c|``. So
each confidence ``c`` of :func:`~recommender.models.mf.confidence_matrix` is
fed to Spark as ``sign(c) * (|c| - 1) / alpha``: rated and watched anime get the
same confidence, and a dislike (rating below ``dislike_below``) gets the same
negative-preference weight in both. (A preference of exactly 0, possible only
with ``watched_value = 0``, would be a positive to implicit and a negative to
Spark.)

What differs: Spark scales the regularisation of each user or anime by its
number of positives (``regParam * n``, "ALS-WR"), implicit uses one constant.
``regParam`` is set to ``regularization`` divided by the mean positives per
user, so a typical user is regularised as in the in-process fit; anime, which
have more positives, are regularised more. The user factors written are then
solved by implicit against Spark's anime factors (the same fold-in a what-if
list gets), so known and what-if users are scored alike.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommender.config import EngineParams, Settings, load_settings
from recommender.core.types import TrainingData
from recommender.errors import SparkUnavailableError
from recommender.models.mf import ALSFactorization, MFConfig, confidence_matrix

_log = logging.getLogger(__name__)
NAME = "mf"
#: ALS user and anime blocks, and shuffle partitions: a few per core of local[2].
_BLOCKS = 4


@dataclass(frozen=True)
class SparkFit:
    """What :func:`train_spark_als` learned and what it cost."""

    item_factors: np.ndarray
    reg_param: float
    seconds: float


@dataclass(frozen=True)
class TrainReport:
    """The outcome of :func:`train_mf`."""

    users: int
    anime: int
    ratings: int
    spark_seconds: float
    total_seconds: float
    cache: str
    #: "model": only the mf entry of a matching cache was replaced; "cache": every
    #: model was fitted (mf taken from Spark) and saved, as a first start would.
    wrote: str


def spark_preferences(ratings: sp.csr_matrix, config: MFConfig) -> sp.coo_matrix:
    """The values Spark's ALS must see for the ``mf`` confidences (module docstring)."""
    confidence = confidence_matrix(ratings, alpha=config.alpha,
                                   watched_value=config.watched_value, bm25=config.bm25,
                                   dislike_below=config.dislike_below).tocoo()
    values = np.sign(confidence.data) * (np.abs(confidence.data) - 1.0) / config.alpha
    return sp.coo_matrix((values.astype(np.float32), (confidence.row, confidence.col)),
                         shape=confidence.shape)


def reg_param(prefs: sp.coo_matrix, config: MFConfig) -> float:
    """Spark's per-positive ``regParam`` matching implicit's constant for a mean user."""
    positive = prefs.data > 0
    users = max(1, len(np.unique(prefs.row[positive])))
    return float(config.regularization / max(1.0, positive.sum() / users))


def _session(master: str):
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailableError("pyspark is not installed (pip install -r "
                                    "requirements-spark.txt)") from None
    try:
        session = (SparkSession.builder.master(master).appName("anime-recommender-als")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                # Spark's default of 200 shuffle partitions is for big clusters; each
                # one is a task per ALS sweep, which dominates on small data.
                .config("spark.sql.shuffle.partitions", str(_BLOCKS))
                .config("spark.driver.memory", "2g")
                .getOrCreate())
        session.sparkContext.setLogLevel("ERROR")
        return session
    except Exception as exc:  # noqa: BLE001 - a JVM that cannot start: one clear line
        first = (str(exc).strip().splitlines() or [""])[0]
        raise SparkUnavailableError(f"cannot start Spark at {master!r} (is Java 17 "
                                    f"installed?): {first[:200]}") from None


def train_spark_als(ratings: sp.csr_matrix, config: MFConfig, master: str = "local[2]",
                    spark=None, blocks: int = _BLOCKS) -> SparkFit:
    """Anime factors (anime x factors, float32) of Spark's implicit ALS on ``ratings``.

    ``spark`` is an open session to reuse; without it one is started at
    ``master`` and stopped afterwards. Anime nobody rated get zero factors.
    """
    started = time.perf_counter()
    own = spark is None
    spark = _session(master) if own else spark
    try:
        from pyspark.ml.recommendation import ALS

        if spark.sparkContext.getCheckpointDir() is None:
            # Without checkpoints the lineage grows with every sweep until the JVM's
            # stack overflows (seen at 15 sweeps); on a cluster set a shared directory.
            spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="anirec-als-"))
        prefs = spark_preferences(ratings, config)
        param = reg_param(prefs, config)
        import pandas as pd

        frame = spark.createDataFrame(pd.DataFrame({
            "user": prefs.row.astype(np.int32), "item": prefs.col.astype(np.int32),
            "rating": prefs.data.astype(np.float32)}))
        als = ALS(rank=config.factors, maxIter=config.iterations, regParam=param,
                  alpha=config.alpha, implicitPrefs=True, userCol="user", itemCol="item",
                  ratingCol="rating", seed=config.random_state, nonnegative=False,
                  coldStartStrategy="drop", numUserBlocks=blocks, numItemBlocks=blocks,
                  checkpointInterval=5)
        model = als.fit(frame)
        rows = model.itemFactors.toPandas()
    finally:
        if own:
            spark.stop()
    items = np.zeros((ratings.shape[1], config.factors), dtype=np.float32)
    if len(rows):
        items[rows["id"].to_numpy(np.int64)] = np.stack(rows["features"].to_numpy())
    return SparkFit(items, param, time.perf_counter() - started)


def fold_in(item_factors: np.ndarray, data: TrainingData, config: MFConfig) -> ALSFactorization:
    """An "mf" scorer with ``item_factors`` and every user solved against them."""
    zeros = np.zeros((data.ratings.shape[0], config.factors), dtype=np.float32)
    scorer = ALSFactorization.from_state({"user_factors": zeros, "item_factors": item_factors},
                                         data, config)
    confidence = confidence_matrix(data.ratings, alpha=config.alpha,
                                   watched_value=config.watched_value, bm25=config.bm25,
                                   dislike_below=config.dislike_below)
    users = scorer.model_.recalculate_user(np.arange(data.ratings.shape[0]), confidence)
    return ALSFactorization.from_state({"user_factors": users, "item_factors": item_factors},
                                       data, config)


def train_mf(master: str, settings: Settings | None = None, spark=None) -> TrainReport:
    """Train "mf" with Spark on the database's ratings and write it into the model cache.

    ``spark``: an open session to use instead of starting one at ``master``.
    """
    from recommender.data import database as db
    from recommender.serving.build import build_parts, training_data
    from recommender.serving.cache import ModelCache
    from recommender.serving.startup import save

    started = time.perf_counter()
    settings = settings or load_settings()
    params: EngineParams = settings.params
    config: MFConfig = params.model(NAME)
    database = db.create_db_engine(settings.database_url)
    try:
        db.create_tables(database)
        if db.count_anime(database) == 0:
            # An empty database gets the bundled data first, as a start does.
            from recommender.data.ingest import ingest_bundled

            ingest_bundled(database)
        # Read before the ratings, as a start does: a later change makes it stale.
        revision = db.data_revision(database)
        data = training_data(db.load_anime(database), db.load_ratings(database))
    except db.DRIVER_ERRORS as exc:
        # One clear line naming the setting, as a start gives; no traceback.
        raise db.database_error(settings.database_url, "lost while reading the ratings",
                                exc) from None
    finally:
        database.dispose()
    fit = train_spark_als(data.ratings, config, master, spark)
    scorer = fold_in(fit.item_factors, data, config)
    cache = ModelCache(settings.cache_dir)
    if cache.replace_model(NAME, scorer, params.fit_key(NAME), data):
        wrote = "model"
    else:
        parts = build_parts(data, params, restored={NAME: scorer})
        save(cache, params, parts.snapshot, parts.models, parts.search, revision)
        wrote = "cache"
    return TrainReport(int(data.ratings.shape[0]), int(data.ratings.shape[1]),
                       int(data.ratings.nnz), fit.seconds, time.perf_counter() - started,
                       str(settings.cache_dir), wrote)
