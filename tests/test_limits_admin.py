"""Limits on request sizes, the per-session user quota, and the admin key and actions."""

import re
import threading
import time
from dataclasses import replace

import pytest

from recommender import RecommenderEngine
from recommender.config import ROOT, Settings
from recommender.data.database import count_rows, load_users
from recommender.errors import AdminKeyError, InvalidParameterError, QuotaExceededError
from recommender.serving.admin import (
    admin_enabled,
    check_admin_key,
    delete_app_users,
    rebuild_index,
    reingest_bundled,
)
from recommender.serving.engine import MAX_K, MAX_LIST, MAX_N
from recommender.serving.limits import SessionQuota
from recommender.serving.search import MAX_QUERY_LENGTH
from recommender.tools.reliability import verify_consistency


# --------------------------------------------------------------------------- request bounds
def test_bounds_on_n_k_list_size_and_query_length(tiny_engine):
    assert len(tiny_engine.recommend(liked={1: 10}, n=MAX_N)) <= MAX_N
    for bad in (0, MAX_N + 1, 10**12):
        with pytest.raises(InvalidParameterError, match="n must be"):
            tiny_engine.recommend(liked={1: 10}, n=bad)
    assert len(tiny_engine.neighbors(liked={1: 10, 2: 3}, k=MAX_K)) <= MAX_K
    with pytest.raises(InvalidParameterError, match="k must be"):
        tiny_engine.neighbors(liked={1: 10, 2: 3}, k=MAX_K + 1)
    with pytest.raises(InvalidParameterError, match=f"at most {MAX_LIST}"):
        tiny_engine.recommend(liked=[1] * (MAX_LIST + 1))
    assert len(tiny_engine.recommend(liked=[1, 2] * (MAX_LIST // 2), n=3)) == 3
    tiny_engine.search("s" * MAX_QUERY_LENGTH)
    with pytest.raises(InvalidParameterError, match="too long"):
        tiny_engine.search("s" * (MAX_QUERY_LENGTH + 1))


# --------------------------------------------------------------------------- session quota
def test_session_quota_counts_and_gives_back_failed_slots():
    quota = SessionQuota(2)
    with quota.reserve():
        pass
    with pytest.raises(RuntimeError), quota.reserve():
        raise RuntimeError("add_user failed")  # the slot comes back
    assert quota.used == 1 and quota.remaining == 1
    assert quota.try_acquire() and not quota.try_acquire()
    with pytest.raises(QuotaExceededError, match="2 users"):
        quota.acquire()
    with pytest.raises(InvalidParameterError):
        SessionQuota(-1)


def test_session_quota_holds_under_concurrency():
    quota = SessionQuota(50)
    granted = []

    def grab():
        for _ in range(100):
            granted.append(quota.try_acquire())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 50 and quota.remaining == 0


def test_quota_bounds_what_one_session_adds_to_the_database(tiny_settings):
    engine = RecommenderEngine.from_settings(tiny_settings)
    before = count_rows(engine.database)["users"]
    sessions = [SessionQuota(3), SessionQuota(3)]
    created = 0
    for quota in sessions:
        for i in range(5):
            try:
                with quota.reserve():
                    engine.add_user({1 + i: 10, 12: 2})
                    created += 1
            except QuotaExceededError:
                pass
    assert created == 6 and count_rows(engine.database)["users"] == before + 6


# --------------------------------------------------------------------------- admin key
def test_admin_key_is_compared_in_constant_time_and_off_when_unset():
    on = Settings(secret_key="correct horse battery staple")
    off = Settings(secret_key=None)
    assert admin_enabled(on) and not admin_enabled(off)
    assert check_admin_key(on, "correct horse battery staple")
    for wrong in ("", "correct horse", "correct horse battery staple ", None, 123, "Ω"):
        assert not check_admin_key(on, wrong)
    assert not check_admin_key(off, "") and not check_admin_key(off, None)
    assert not check_admin_key(Settings(secret_key=""), "")
    source = (ROOT / "recommender" / "serving" / "admin.py").read_text()
    assert "hmac.compare_digest" in source and not re.search(r"supplied\s*==", source)


def test_admin_actions_refuse_a_wrong_key(tiny_settings):
    engine = RecommenderEngine.from_settings(tiny_settings)
    engine.add_user({1: 10, 2: 3})
    before = count_rows(engine.database)
    keyed = replace(tiny_settings, secret_key="s3cret")
    for settings, key, error in ((tiny_settings, "anything", "SECRET_KEY is not set"),
                                 (keyed, "not it", "wrong admin key")):
        with pytest.raises(AdminKeyError, match=error):
            reingest_bundled(settings, key)
        with pytest.raises(AdminKeyError, match=error):
            rebuild_index(settings, key)
        with pytest.raises(AdminKeyError, match=error):
            delete_app_users(engine, settings, key)
    assert count_rows(engine.database) == before


def test_delete_app_users_and_rebuild_index(tiny_settings):
    settings = Settings(database_url=tiny_settings.database_url,
                        cache_dir=tiny_settings.cache_dir, params=tiny_settings.params,
                        secret_key="s3cret")
    engine = RecommenderEngine.from_settings(settings)
    dataset_users = set(engine.user_ids().tolist())
    added = [engine.add_user({1 + i: 10, 12: 2, 5: 6}) for i in range(4)]
    deleted, fresh = delete_app_users(engine, settings, "s3cret")
    assert deleted == 4 and fresh is not engine
    assert set(fresh.user_ids().tolist()) == dataset_users
    assert not any(fresh.has_user(u) for u in added)
    assert set(load_users(fresh.database)["source"]) == {"dataset"}
    assert verify_consistency(fresh) == []
    # New users start again from the app range, and a restart agrees.
    new_id = fresh.add_user({3: 10, 14: 1})
    assert verify_consistency(RecommenderEngine.from_settings(settings)) == []

    rebuilt = rebuild_index(settings, "s3cret")
    assert rebuilt.build_info["index"] == "built" and rebuilt.has_user(new_id)
    assert verify_consistency(rebuilt) == []
    assert RecommenderEngine.from_settings(settings).build_info["index"] == "loaded"


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_reingest_bundled_adds_the_bundled_data_once(db_url, tmp_path):
    settings = Settings(database_url=db_url, cache_dir=tmp_path / "cache",
                        secret_key="s3cret")
    from recommender.data.database import create_db_engine, create_tables
    from recommender.data.ingest import ingest_bundled

    database = create_db_engine(db_url)
    create_tables(database)
    ingest_bundled(database)
    counts = count_rows(database)
    started = time.perf_counter()

    current = object()  # stands in for the running engine, which is kept
    report, same = reingest_bundled(settings, "s3cret", current=current)  # all there already
    assert same is current and report.ratings_added == 0 and count_rows(database) == counts
    print(f"re-ingest of the bundled data (nothing to add) took "
          f"{time.perf_counter() - started:.1f}s")
