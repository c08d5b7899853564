"""Concurrency: one shared engine, many query threads beside threads adding users."""

import threading

import numpy as np
import pytest

from recommender import RecommenderEngine
from recommender.tools.reliability import find_added_users, run_stress, verify_consistency


@pytest.mark.slow
def test_stress_loses_nothing_and_a_restart_reloads_every_user(tiny_settings, request):
    if "postgresql" in request.node.name:
        seconds = 8  # the same body on PostgreSQL, shorter: it shares the CI budget
    else:
        seconds = 20
    engine = RecommenderEngine.from_settings(tiny_settings)
    report = run_stress(engine, seconds=seconds, threads=6, writer_threads=2)
    print(f"stress figures: {report.figures()}")
    assert not report.errors, report.errors[:5]
    assert report.queries > 0 and report.users_added > 0
    assert set(report.query_counts) == {"recommend", "recommend-whatif", "neighbours",
                                        "neighbours-exact", "neighbours-whatif", "search"}
    ids = [u for u, _ in report.added]
    assert len(set(ids)) == len(ids)
    assert verify_consistency(engine) == []
    assert find_added_users(engine, report.added) == []

    restarted = RecommenderEngine.from_settings(tiny_settings)
    assert all(restarted.has_user(u) for u in ids)
    assert verify_consistency(restarted) == []
    assert find_added_users(restarted, report.added) == []


def test_what_if_users_never_touch_the_shared_state(tiny_settings):
    engine = RecommenderEngine.from_settings(tiny_settings)
    ids_before = engine.user_ids().copy()
    labels_before = np.sort(engine.knn.index_.labels())
    matrix_before = engine.data.ratings.copy()
    errors: list[BaseException] = []

    def session(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(40):
                picked = rng.choice(np.arange(1, 21), size=5, replace=False)
                liked = {int(a): int(r) for a, r in zip(picked, rng.integers(1, 11, 5))}
                engine.recommend(liked=liked, algorithm="hybrid", n=5)
                engine.neighbors(liked=liked, k=5)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert np.array_equal(engine.user_ids(), ids_before)
    assert np.array_equal(np.sort(engine.knn.index_.labels()), labels_before)
    assert (engine.data.ratings != matrix_before).nnz == 0
    assert engine.data.ratings.shape == matrix_before.shape
