"""Crash safety: SIGKILL a real process while it saves the index or inserts users.

The database is the source of truth: after any kill the next start must hold every
database user in memory and in the index, with exactly the database's ratings.
An index that lags is caught up or rebuilt, never used when it does not match.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recommender import RecommenderEngine
from recommender.data.database import count_rows, create_db_engine
from recommender.serving.cache import ModelCache
from recommender.tools.reliability import verify_consistency

CHILD = Path(__file__).with_name("_crash_child.py")
KILLS = {"save": 3, "add": 2}


def _kill_at_random(mode: str, settings, tmp_path: Path, rng: random.Random) -> None:
    ready = tmp_path / f"ready-{mode}-{rng.random()}"
    child = subprocess.Popen(
        [sys.executable, str(CHILD), mode, settings.database_url, str(settings.cache_dir),
         str(ready)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while not ready.exists():
            if child.poll() is not None:
                pytest.fail(f"the child died: {child.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the child did not start within 90 s")
            time.sleep(0.05)
        time.sleep(rng.uniform(0.2, 1.5))
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stderr.close()


@pytest.mark.slow
# The cache files do not depend on the database, so the save case runs on SQLite only.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sigkill_during_index_saves(tiny_settings, tmp_path, request):
    _crash_loop("save", tiny_settings, tmp_path, request)


@pytest.mark.slow
def test_sigkill_during_user_inserts(tiny_settings, tmp_path, request):
    _crash_loop("add", tiny_settings, tmp_path, request)


def _crash_loop(mode, tiny_settings, tmp_path, request):
    rng = random.Random(f"{mode}-{request.node.name}")
    RecommenderEngine.from_settings(tiny_settings)  # a first cache to overwrite
    database = create_db_engine(tiny_settings.database_url)
    added_total = 0
    starts = []
    for _ in range(KILLS[mode]):
        before = count_rows(database)["users"]
        _kill_at_random(mode, tiny_settings, tmp_path, rng)
        after = count_rows(database)["users"]
        assert after >= before
        added_total += after - before
        leftovers = list(tiny_settings.cache_dir.glob(".*.tmp"))
        engine = RecommenderEngine.from_settings(tiny_settings)
        info = engine.build_info
        starts.append((info["index"], info["users_caught_up"], len(leftovers),
                       info.get("cache_problem")))
        assert verify_consistency(engine) == []
        for user_id in engine.user_ids()[-3:]:
            assert len(engine.recommend(int(user_id), algorithm="user-user", n=3)) == 3
    database.dispose()
    print(f"{KILLS[mode]} kills while {mode}: {added_total} users committed before the kills, "
          f"all present after restart; restarts (index, caught up, temp files left, "
          f"cache problem): {starts}")
    assert added_total > 0
    # A later save clears what killed saves left behind.
    ModelCache(tiny_settings.cache_dir).remove_stale_temporaries(older_than=0)
    assert not list(tiny_settings.cache_dir.glob(".*.tmp"))
