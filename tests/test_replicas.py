"""Two processes on one database: the index is built once, loaded by the other process,
and a user saved by one is found by the other through catch-up, without a rebuild."""

import os
import subprocess
import sys

from conftest import ROOT
from recommender import RecommenderEngine
from recommender.config import params_to_env


def _env(settings) -> dict:
    env = {**os.environ, "DATABASE_URL": settings.database_url,
           "ANIREC_CACHE_DIR": str(settings.cache_dir)}
    env.update(params_to_env(settings.params))
    return env


def test_a_user_saved_by_another_process_is_found_by_catch_up(tiny_settings):
    first = RecommenderEngine.from_settings(tiny_settings)  # builds and saves the index
    assert first.build_info["index"] == "built"
    manifest = tiny_settings.cache_dir / "manifest.json"
    saved = manifest.stat().st_mtime_ns

    other = subprocess.run(
        [sys.executable, "-m", "recommender", "add-user",
         "--liked-id", "1", "--liked-id", "2", "--liked-id", "3"],
        cwd=ROOT, env=_env(tiny_settings), capture_output=True, text=True, timeout=300)
    assert other.returncode == 0, other.stderr
    new_id = int(other.stdout.strip().splitlines()[-1])
    # The other process loaded the persisted index rather than rebuilding and saving it.
    assert manifest.stat().st_mtime_ns == saved

    assert not first.has_user(new_id)
    assert first.catch_up() == 1
    assert first.has_user(new_id)
    found = first.neighbors(liked={1: 10, 2: 10, 3: 10}, k=5)
    assert new_id in set(found["user_id"])
    recs = first.recommend(new_id, algorithm="user-user", n=3)
    assert not set(recs["anime_id"]) & {1, 2, 3}

    # A third process started now sees the user from the start (cache + catch-up).
    probe = ("from recommender import RecommenderEngine as E; "
             f"e = E.from_settings(); print(e.has_user({new_id}), e.build_info['index'])")
    third = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=_env(tiny_settings),
                           capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert third.stdout.split() == ["True", "loaded"]
