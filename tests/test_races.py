"""Queries beside add_user: every request reads one snapshot, so nothing ever indexes a
matrix that has a row too few or too many (the class of race that raised IndexError)."""

from __future__ import annotations

import random
import threading

import numpy as np

from recommender import RecommenderEngine
from recommender.tools.reliability import varied_list, verify_consistency


def _run(engine: RecommenderEngine, seconds: float, readers: int = 2):
    stop = threading.Event()
    errors: list[str] = []
    counts: dict[str, int] = {}
    lock = threading.Lock()
    anime = engine.data.items.ids

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            ids = engine.user_ids()
            user = int(ids[rng.randrange(len(ids))])
            kind = rng.choice(("exact user", "ann user", "exact list", "ann list",
                               "recommend", "snapshot"))
            try:
                if kind == "exact user":
                    engine.neighbors(user, k=rng.choice((3, 10, 50)), exact=True)
                elif kind == "ann user":
                    engine.neighbors(user, k=rng.choice((3, 10, 50)))
                elif kind in ("exact list", "ann list"):
                    engine.neighbors(liked=varied_list(rng, anime, (2, 8)), k=10,
                                     exact=kind == "exact list")
                elif kind == "recommend":
                    engine.recommend(user, algorithm=rng.choice(("hybrid", "user-user")), n=5)
                else:  # one snapshot is consistent in itself
                    snap = engine.snapshot
                    assert (snap.n_users == len(snap.data.users)
                            == snap.rows.similarity.shape[0] == snap.rows.vectors.shape[0])
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                with lock:
                    errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            with lock:
                counts[kind] = counts.get(kind, 0) + 1

    def writer() -> None:
        rng = random.Random(99)
        while not stop.is_set():
            engine.add_user(varied_list(rng, anime))

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    return counts, errors


def test_exact_and_ann_neighbours_beside_add_user_never_fail(tiny_settings):
    engine = RecommenderEngine.from_settings(tiny_settings)
    before = len(engine.user_ids())
    counts, errors = _run(engine, seconds=6.0)
    total = sum(counts.values())
    print(f"{total} queries beside {len(engine.user_ids()) - before} new users: {counts}")
    assert errors == []
    assert total > 400 and len(engine.user_ids()) - before > 10
    assert verify_consistency(engine) == []


def test_a_request_reads_the_snapshot_it_started_with(tiny_settings):
    engine = RecommenderEngine.from_settings(tiny_settings)
    old = engine.snapshot
    engine.add_user({1: 10, 2: 9, 3: 2})
    new = engine.snapshot
    assert new is not old and new.n_users == old.n_users + 1
    # The old snapshot is untouched: its arrays still have the old number of rows.
    assert old.rows.vectors.shape[0] == old.data.ratings.shape[0] == old.n_users
    assert np.array_equal(new.data.users.ids[:-1], old.data.users.ids)
