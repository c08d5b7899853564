"""The on-disk cache: round trip, and a rebuild (never a crash) on anything suspicious."""

import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import TINY_PARAMS, two_taste_groups
from recommender import RecommenderEngine
from recommender.core.profiling import PROFILER
from recommender.data.catalog import clean_anime, clean_ratings
from recommender.errors import IndexCacheError
from recommender.models.user_knn import UserKNN
from recommender.serving.build import build_parts
from recommender.serving.cache import ModelCache
from recommender.serving.startup import save


def fitted(ratings=None):
    anime, base = two_taste_groups()
    data = RecommenderEngine.training_data(clean_anime(anime),
                                           clean_ratings(base if ratings is None else ratings))
    return RecommenderEngine.fit(data, TINY_PARAMS)


@pytest.fixture
def saved(tmp_path):
    engine = fitted()
    cache = ModelCache(tmp_path / "cache")
    save(cache, engine.params, engine.snapshot, engine.models, engine.search_index, None)
    return engine, cache


def load_user_user(cache, engine, params=None):
    """The user-user model and rows read back, as start-up reads them."""
    params = params or engine.params
    state = cache.load_state("user-user", engine.data, params.fit_key("user-user"))
    knn = UserKNN.from_state(state, engine.data, params.model("user-user"))
    return knn, cache.load_rows(engine.data)


def test_round_trip_gives_the_same_model(saved):
    engine, cache = saved
    knn, rows = load_user_user(cache, engine)
    assert np.array_equal(rows.vectors, engine.snapshot.rows.vectors)
    assert np.array_equal(knn.components_, engine.knn.components_)
    assert knn.mean_ == engine.knn.mean_
    restored = RecommenderEngine(build_parts(engine.data, engine.params,
                                             restored={"user-user": knn}, rows=rows))
    for user in (2, 3, 17):
        a = engine.neighbors(user, k=5)
        b = restored.neighbors(user, k=5)
        assert a["user_id"].tolist() == b["user_id"].tolist()
        assert engine.recommend(user, n=5)["anime_id"].tolist() == \
            restored.recommend(user, n=5)["anime_id"].tolist()
    manifest = json.loads(cache.manifest_path.read_text())
    assert set(manifest["models"]["user-user"]["files"]) == {"index", "components"}
    assert set(manifest["models"]["rows"]["files"]) == {
        "similarity_indptr", "similarity_indices", "similarity_data", "vectors",
        "postings_indptr", "postings_indices", "postings_data"}
    assert set(manifest["models"]["data"]["files"]) == {
        "user_ids", "anime_ids", "indptr", "indices", "data"}
    # Restored similarity rows are the fitted ones, entry for entry.
    assert (rows.similarity != engine.snapshot.rows.similarity).nnz == 0
    assert manifest["fingerprint"]["max_user_id"] == 40


def _corrupt_middle(path):
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 64] = bytes(255 - b for b in raw[middle:middle + 64])
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage, reason", [
    (lambda d: _corrupt_middle(d / "user-user.index.bin"), "checksum"),
    (lambda d: (d / "user-user.index.bin").write_bytes(
        (d / "user-user.index.bin").read_bytes()[:1000]), "truncated"),
    (lambda d: (d / "rows.vectors.npy").unlink(), "missing"),
    (lambda d: _corrupt_middle(d / "user-user.components.npy"), "checksum"),
    (lambda d: (d / "manifest.json").write_text((d / "manifest.json").read_text()[:50]),
     "no usable cache manifest"),
    (lambda d: (d / "manifest.json").write_text("[]"), "no usable cache manifest"),
])
def test_damaged_cache_is_refused_before_hnswlib_reads_it(saved, damage, reason):
    engine, cache = saved
    damage(cache.directory)
    with pytest.raises(IndexCacheError, match=reason):
        load_user_user(cache, engine)


def test_other_data_or_fit_settings_are_refused(saved):
    engine, cache = saved
    _, ratings = two_taste_groups()
    changed = ratings.copy()
    changed.loc[0, "rating"] = 1 if changed.loc[0, "rating"] != 1 else 2
    with pytest.raises(IndexCacheError, match="other data"):
        load_user_user(cache, fitted(changed))
    with pytest.raises(IndexCacheError, match="other settings"):
        load_user_user(cache, engine, engine.params.with_model("user-user", m=8))
    # A query-time setting is not part of the fit: the cached model is used.
    knn, _ = load_user_user(cache, engine, engine.params.with_model("user-user", ef=77,
                                                                     n_neighbours=3))
    assert knn.config.ef == 77 and knn.config.n_neighbours == 3


def test_from_settings_builds_loads_and_rebuilds_a_damaged_cache(tiny_settings):
    first = RecommenderEngine.from_settings(tiny_settings)
    assert first.build_info["index"] == "built"
    assert {"load_seconds", "build_seconds", "database", "dialect", "cache"} <= set(
        first.build_info)
    stages = []
    second = RecommenderEngine.from_settings(tiny_settings,
                                             progress=lambda s, f: stages.append((s, f)))
    assert second.build_info["index"] == "loaded"
    assert stages[0][1] == 0.0 and stages[-1] == ("ready", 1.0)
    assert all(a[1] <= b[1] for a, b in zip(stages, stages[1:]))
    assert second.recommend(4, n=5)["anime_id"].tolist() == \
        first.recommend(4, n=5)["anime_id"].tolist()

    _corrupt_middle(tiny_settings.cache_dir / "user-user.index.bin")
    third = RecommenderEngine.from_settings(tiny_settings)
    assert third.build_info["index"] == "built"
    assert "checksum" in third.build_info["cache_problem"]
    assert RecommenderEngine.from_settings(tiny_settings).build_info["index"] == "loaded"

    # A serving or query-time setting refits nothing; a setting the fit depends on refits.
    serving = replace(tiny_settings, params=replace(
        tiny_settings.params.with_model("user-user", n_candidates=30, n_neighbours=7),
        hybrid_weight=0.3, include_adult=True).with_model("blend", weights="ease:1"))
    PROFILER.clear()
    reused = RecommenderEngine.from_settings(serving)
    assert reused.build_info["index"] == "loaded"
    assert reused.build_info["models_loaded"] == ["content", "ease", "mf", "ranker"]
    assert not {r.stage for r in PROFILER.records()} & {
        "content fit", "mf fit", "ease fit", "user-user fit", "ranker fit"}
    assert reused.knn.config.n_neighbours == 7 and reused.params.hybrid_weight == 0.3
    changed = replace(tiny_settings, params=tiny_settings.params.with_model("user-user", dim=6))
    assert RecommenderEngine.from_settings(changed).build_info["index"] == "built"
    first.database.dispose()


def test_a_warm_start_loads_every_model_instead_of_fitting(tiny_settings):
    from recommender.core.profiling import PROFILER

    cold = RecommenderEngine.from_settings(tiny_settings)
    assert cold.build_info["index"] == "built"
    PROFILER.clear()
    warm = RecommenderEngine.from_settings(tiny_settings)
    assert warm.build_info["index"] == "loaded"
    assert warm.build_info["models_loaded"] == ["content", "ease", "mf", "ranker"]
    assert warm.build_info["search_index"] == "loaded"
    for query in ("scifi 3", "romanse", "sci"):
        assert len(cold.search(query)) > 0
        assert (warm.search(query)["anime_id"].tolist()
                == cold.search(query)["anime_id"].tolist())
    fitted = {r.stage for r in PROFILER.records()} & {"content fit", "mf fit", "ease fit",
                                                      "ranker fit",
                                                      "user-user fit"}
    assert not fitted
    for algorithm in ("content", "mf", "ease", "blend", "hybrid"):
        assert (warm.recommend(4, algorithm=algorithm, n=5)["anime_id"].tolist()
                == cold.recommend(4, algorithm=algorithm, n=5)["anime_id"].tolist())


def _matrix_source(engine) -> str:
    return engine.build_info.get("matrix", "")


def test_a_warm_start_takes_the_matrix_from_the_cache_and_new_users_from_the_database(
        tiny_settings):
    cold = RecommenderEngine.from_settings(tiny_settings)
    saved = cold.add_user({3: 10, 4: 9, 21: 2})
    warm = RecommenderEngine.from_settings(tiny_settings)
    assert warm.build_info["index"] == "loaded"
    assert _matrix_source(warm) == "loaded from the cache"
    assert warm.build_info["users_caught_up"] == 1 and warm.has_user(saved)
    assert (warm.data.ratings != cold.data.ratings).nnz == 0
    assert np.array_equal(warm.user_ids(), cold.user_ids())
    for user in (2, 17, saved):
        assert (warm.recommend(user, n=5)["anime_id"].tolist()
                == cold.recommend(user, n=5)["anime_id"].tolist())
    cold.database.dispose()
    warm.database.dispose()


def test_a_changed_database_is_read_again_instead_of_trusting_the_cache(tiny_settings):
    import sqlalchemy as sa

    from recommender.data import database as db
    from recommender.data.ingest import ingest

    first = RecommenderEngine.from_settings(tiny_settings)
    database = first.database
    new = min(set(range(1, 21)) - set(first.user_ratings(2)["anime_id"]))
    # More ratings for a cached user: ingest gives the data a new revision.
    extra = tiny_settings.cache_dir.parent / "more.csv"
    extra.write_text(f"user_id,anime_id,rating\n2,{new},7\n")
    ingest(database, None, extra)
    second = RecommenderEngine.from_settings(tiny_settings)
    assert _matrix_source(second).startswith("read from the database")
    assert second.build_info["index"] == "built"  # the fingerprint no longer matched
    assert new in second.user_ratings(2)["anime_id"].tolist()
    assert _matrix_source(RecommenderEngine.from_settings(tiny_settings)) == \
        "loaded from the cache"
    # A change behind the product's back that keeps the revision: the row count
    # up to the watermark differs, so the ratings are read again.
    with db.write_transaction(database) as conn:
        conn.execute(sa.delete(db.Rating).where(db.Rating.user_id == 2,
                                                 db.Rating.anime_id == new))
    third = RecommenderEngine.from_settings(tiny_settings)
    assert "other ratings" in _matrix_source(third)
    assert new not in third.user_ratings(2)["anime_id"].tolist()
    database.dispose()
