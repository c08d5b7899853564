"""The "mf" model trained by Spark MLlib's ALS in local mode, then served without Spark.

Needs pyspark (requirements-spark.txt) and Java 17: under CI=true a missing one
fails these tests; elsewhere they are skipped.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import IN_CI, TINY_PARAMS, fill_tiny_database
from recommender import RecommenderEngine
from recommender.config import Settings
from recommender.core.types import UserProfile
from recommender.evaluation.metrics import ndcg_at_k
from recommender.evaluation.split import split_ratings
from recommender.models.mf import ALSFactorization, MFConfig
from recommender.serving.build import training_data
from recommender.serving.cache import ModelCache
from recommender.tools.spark_mf import fold_in, spark_preferences, train_mf, train_spark_als

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark():
    from recommender.errors import SparkUnavailableError
    from recommender.tools.spark_mf import _session

    try:
        session = _session("local[2]")
    except SparkUnavailableError as exc:
        if IN_CI:
            pytest.fail(f"Spark is required under CI=true: {exc}")
        pytest.skip(str(exc))
    yield session
    session.stop()


def test_preferences_give_spark_the_mf_confidences():
    # Spark: preference 1 if r > 0 else 0, confidence 1 + alpha * |r|.
    config = MFConfig()
    import scipy.sparse as sp

    ratings = sp.csr_matrix(np.array([[10, -1, 3, 7, 0]], dtype=np.float32))
    prefs = spark_preferences(ratings, config).tocsr()
    spark_confidence = 1 + config.alpha * np.abs(prefs.data)
    np.testing.assert_allclose(spark_confidence, [1 + 5 * 1.0, 1 + 5 * 0.5,
                                                  1 + 5 * (7 - 3) / 10, 1 + 5 * 0.7], rtol=1e-6)
    # The dislike (3 < dislike_below = 7) is the one negative preference.
    assert (prefs.data > 0).tolist() == [True, True, False, True]


def test_spark_factors_are_loaded_by_a_start_and_serve(spark, tmp_path):
    url = f"sqlite:///{tmp_path / 'test.db'}"
    fill_tiny_database(url, tmp_path)
    settings = Settings(database_url=url, cache_dir=tmp_path / "cache", params=TINY_PARAMS)

    first = train_mf("local[2]", settings, spark=spark)
    assert first.wrote == "cache" and first.users == 40 and first.anime == 20

    engine = RecommenderEngine.from_settings(settings)
    assert "mf" in engine.build_info["models_loaded"]
    served = engine.scorer("mf")
    cached = ModelCache(settings.cache_dir).load_state(
        "mf", engine.snapshot.data, TINY_PARAMS.fit_key("mf"))
    np.testing.assert_array_equal(served.item_factors_, cached["item_factors"])
    # Not the in-process fit: these are Spark's factors.
    # (A copy: the served matrix is a read-only mapping of the cache.)
    data = replace(engine.snapshot.data, ratings=engine.snapshot.data.ratings.copy())
    local = ALSFactorization(TINY_PARAMS.model("mf")).fit(data)
    assert not np.allclose(local.item_factors_, served.item_factors_, atol=1e-3)

    # A what-if list is folded in against Spark's anime factors and stays in its taste.
    recs = engine.recommend(liked={1: 10, 2: 9, 3: 10}, algorithm="mf", n=5)
    assert set(recs["anime_id"]) <= set(range(4, 11))

    # With a cache saved on the same data, only the mf entry is replaced.
    second = train_mf("local[2]", settings, spark=spark)
    assert second.wrote == "model"
    again = RecommenderEngine.from_settings(settings)
    assert "mf" in again.build_info["models_loaded"]
    assert set(again.build_info["models_loaded"]) == set(engine.build_info["models_loaded"])


def _ndcg(scorer: ALSFactorization, data, train, held, k: int = 10) -> float:
    values = []
    for user_id, group in held.groupby("user_id"):
        user = int(data.users.numbers(np.array([user_id]))[0])
        seen = data.ratings[user].indices
        scores = scorer.score(UserProfile(np.asarray(seen), data.ratings[user].data,
                                          user_idx=user)).values.copy()
        scores[seen] = -np.inf
        ranked = data.items.ids[np.argsort(-scores, kind="stable")[:k]]
        values.append(ndcg_at_k(ranked, set(group["anime_id"]), k))
    return float(np.mean(values))


def test_spark_ndcg_is_within_a_few_percent_of_the_in_process_mf(spark, bundled_frames):
    anime, ratings = bundled_frames
    users = np.sort(ratings["user_id"].unique())[:300]
    split = split_ratings(ratings[ratings["user_id"].isin(users)], random_state=0)
    train, held = split.train, split.validation
    data = training_data(anime, train)
    config = MFConfig(factors=32, iterations=10)

    local = ALSFactorization(config).fit(data)
    fit = train_spark_als(data.ratings, config, spark=spark)
    distributed = fold_in(fit.item_factors, data, config)

    local_ndcg = _ndcg(local, data, train, held)
    spark_ndcg = _ndcg(distributed, data, train, held)
    assert local_ndcg > 0.05  # the comparison means something
    assert spark_ndcg >= 0.95 * local_ndcg, (spark_ndcg, local_ndcg)
