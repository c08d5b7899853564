"""New users: one operation across database and index, safe beside queries and other writers."""

import threading

import pytest
import sqlalchemy as sa

from recommender import RecommenderEngine
from recommender.data.database import APP_USER_ID_START, count_rows, load_users
from recommender.errors import EmptyInputError, InvalidParameterError

SCIFI_FAN = {1: 10, 2: 9, 3: 10, 4: 9, 12: 2}


def test_a_new_user_is_found_at_once_and_after_a_restart(tiny_settings):
    engine = RecommenderEngine.from_settings(tiny_settings)
    user_id = engine.add_user(SCIFI_FAN)
    assert user_id == APP_USER_ID_START
    assert engine.add_user({11: 10, 13: 9}) == user_id + 1
    recs = engine.recommend(user_id, algorithm="user-user", n=3)
    assert not set(recs["anime_id"]) & set(SCIFI_FAN)
    assert (recs["anime_id"] <= 10).all()  # a sci-fi fan gets sci-fi
    neighbours = engine.neighbors(user_id, k=5)["user_id"]
    assert len(neighbours) == 5 and (neighbours % 2 == 0).all()  # even users love sci-fi
    users = load_users(engine.database)
    assert users.set_index("user_id").loc[user_id, "source"] == "app"

    restarted = RecommenderEngine.from_settings(tiny_settings)
    assert restarted.build_info["index"] == "loaded"
    assert restarted.build_info["users_caught_up"] == 2
    assert restarted.neighbors(user_id, k=5)["user_id"].tolist() == neighbours.tolist()
    again = RecommenderEngine.from_settings(tiny_settings)
    assert again.build_info["users_caught_up"] == 0 and again.has_user(user_id + 1)


def test_bad_lists_are_rejected_before_anything_is_written(tiny_settings):
    engine = RecommenderEngine.from_settings(tiny_settings)
    before = count_rows(engine.database)
    with pytest.raises(EmptyInputError):
        engine.add_user({999: 10})
    with pytest.raises(InvalidParameterError):
        engine.add_user({1: 11})
    with pytest.raises(InvalidParameterError, match="whole numbers"):
        engine.add_user({1: 7.5})
    with pytest.raises(InvalidParameterError, match="source"):
        engine.add_user({1: 7}, source="robot")
    assert count_rows(engine.database) == before


def test_a_failure_between_database_and_index_keeps_neither(tiny_settings):
    engine = RecommenderEngine.from_settings(tiny_settings)
    before = count_rows(engine.database)
    n_users = len(engine.user_ids())
    seen = []

    def fail(user_id):
        seen.append(user_id)
        with engine.database.connect() as conn:  # the row really was committed
            assert conn.execute(sa.text("SELECT count(*) FROM users WHERE user_id = :u"),
                                {"u": user_id}).scalar() == 1
        raise RuntimeError("index unavailable")

    publish = engine.publish_users

    def fail_after_commit(frame):
        fail(int(frame["user_id"].max()))

    engine.publish_users = fail_after_commit  # the step after the database write
    with pytest.raises(RuntimeError, match="index unavailable"):
        engine.add_user(SCIFI_FAN)
    assert count_rows(engine.database) == before
    assert len(engine.user_ids()) == n_users and not engine.has_user(seen[0])
    assert len(engine.knn.index_) == engine.snapshot.n_users

    # A failure inside the index add itself is undone as well.
    engine.publish_users = publish
    original = engine.knn.index_.add
    engine.knn.index_.add = lambda *a, **k: (_ for _ in ()).throw(MemoryError("no room"))
    with pytest.raises(MemoryError):
        engine.add_user(SCIFI_FAN)
    engine.knn.index_.add = original
    assert count_rows(engine.database) == before
    assert engine.snapshot.rows.vectors.shape[0] == n_users == engine.data.ratings.shape[0]

    user_id = engine.add_user(SCIFI_FAN)
    assert engine.has_user(user_id) and len(engine.recommend(user_id, n=3)) == 3


def test_inserts_beside_concurrent_queries(tiny_settings):
    engine = RecommenderEngine.from_settings(tiny_settings)
    stop = threading.Event()
    errors: list[BaseException] = []
    queries = [0]

    def query_loop(seed):
        try:
            while not stop.is_set():
                ids = engine.user_ids()
                user = int(ids[(seed * 7 + queries[0]) % len(ids)])
                engine.recommend(user, algorithm="hybrid", n=5)
                engine.neighbors(user, k=5)
                queries[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=query_loop, args=(i,), daemon=True) for i in range(3)]
    for thread in threads:
        thread.start()
    added = [engine.add_user({1 + i % 10: 10, 2 + i % 9: 9}) for i in range(8)]
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors
    assert queries[0] > 0
    assert added == sorted(added) and len(set(added)) == 8
    for user_id in added:
        assert len(engine.neighbors(user_id, k=3)) > 0


def test_two_engines_on_one_database_allocate_distinct_ids_and_catch_up(tiny_settings):
    # Two engines behave like two processes: separate memory and locks, one database.
    first = RecommenderEngine.from_settings(tiny_settings)
    second = RecommenderEngine.from_settings(tiny_settings)
    results: dict[str, list[int]] = {"first": [], "second": []}
    errors: list[BaseException] = []

    def writer(name, engine):
        try:
            for i in range(5):
                results[name].append(engine.add_user({1 + i: 10, 11 + i: 3}))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=item) for item in
               (("first", first), ("second", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    every = results["first"] + results["second"]
    assert len(set(every)) == 10 and min(every) == APP_USER_ID_START
    first.catch_up()
    second.catch_up()
    for engine in (first, second):
        assert set(every) <= set(engine.user_ids().tolist())
        assert list(engine.user_ids()) == sorted(engine.user_ids())
    assert first.catch_up() == 0
    assert first.neighbors(results["second"][0], k=3)["user_id"].tolist() == \
        second.neighbors(results["second"][0], k=3)["user_id"].tolist()


def test_an_engine_without_a_database_cannot_add_users(tiny_engine):
    with pytest.raises(InvalidParameterError, match="from_settings"):
        tiny_engine.add_user({1: 10})


def test_catch_up_with_an_interval_asks_the_database_at_most_that_often(tiny_settings):
    # What every dashboard page view does: a replica finds another's new user
    # within the interval, and calls inside it cost no query.
    writer = RecommenderEngine.from_settings(tiny_settings)
    reader = RecommenderEngine.from_settings(tiny_settings)
    assert reader.catch_up(min_interval=3600) == 0  # first call always looks
    new_id = writer.add_user({1: 10, 2: 9, 12: 2})
    assert reader.catch_up(min_interval=3600) == 0  # too soon: not looked up
    assert not reader.has_user(new_id)
    assert reader.catch_up() == 1  # no interval: looks now
    assert reader.has_user(new_id)
    assert new_id in set(reader.neighbors(liked={1: 10, 2: 9, 12: 2}, k=5)["user_id"])


def test_looking_for_a_user_asks_the_database_only_above_the_largest_id(tiny_settings,
                                                                        monkeypatch):
    # What a link to a user just saved elsewhere needs: found at once, while an id
    # that cannot be new (below the largest) never costs a query, however often asked.
    from recommender.data import database as db

    writer = RecommenderEngine.from_settings(tiny_settings)
    reader = RecommenderEngine.from_settings(tiny_settings)
    writer.add_user({3: 10})  # app ids start far above the imported ones: a gap
    reader.catch_up(min_interval=3600)  # the interval now keeps the periodic look away
    looks = []
    real = db.ratings_after
    monkeypatch.setattr(db, "ratings_after",
                        lambda conn, after: looks.append(after) or real(conn, after))
    ids = reader.user_ids()
    gap = int(ids[-2]) + 1
    assert gap < ids[-1] and not reader.has_user(gap)
    assert [reader.look_for_user(v) for v in (gap, -3, "x", None, 2.5)] == [False] * 5
    assert looks == []
    new_id = writer.add_user({1: 10, 2: 9})
    looks.clear()
    assert reader.look_for_user(new_id) and reader.has_user(new_id)
    assert looks == [int(ids[-1])]
    assert reader.look_for_user(new_id) and len(looks) == 1  # known now: no query
    assert not reader.look_for_user(new_id + 1) and len(looks) == 2
