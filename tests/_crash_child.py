"""A child process for tests/test_crash.py: saves the cache or adds users in a loop until killed.

Usage: python tests/_crash_child.py save|add DATABASE_URL CACHE_DIR READY_FILE
It writes READY_FILE once the engine is up, then loops forever. Writes are slowed
a little (a sleep between files) so a kill lands inside a save more often.
"""

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import TINY_PARAMS  # noqa: E402
from recommender import RecommenderEngine  # noqa: E402
from recommender.config import Settings  # noqa: E402


def main() -> None:
    mode, url, cache_dir, ready = sys.argv[1:5]
    original = os.replace

    def slow_replace(src, dst):
        # Every cache file is renamed into place (this process does nothing else
        # with os.replace), so a pause here stretches each save across many files.
        time.sleep(random.uniform(0, 0.01))
        return original(src, dst)

    os.replace = slow_replace
    engine = RecommenderEngine.from_settings(
        Settings(database_url=url, cache_dir=Path(cache_dir), params=TINY_PARAMS))
    Path(ready).write_text("up")
    rng = random.Random()
    while True:
        if mode == "save":
            engine.add_user({rng.randint(1, 10): 10, rng.randint(11, 20): 2, 5: 7})
            engine.save_cache()
        else:
            picked = rng.sample(range(1, 21), 6)
            engine.add_user(dict(zip(picked, [10, 2, 7, 5, 9, 1])))


if __name__ == "__main__":
    main()
