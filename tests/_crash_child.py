"""A child process for tests/test_crash.py: saves the cache or adds users in a loop until killed.

Usage: python tests/_crash_child.py save|add DATABASE_URL CACHE_DIR READY_FILE
It writes READY_FILE once the engine is up, then loops forever. Writes are slowed
a little (a sleep between files) so a kill lands inside a save more often.
"""

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import TINY_PARAMS  # noqa: E402

from recommender import RecommenderEngine  # noqa: E402
from recommender.config import Settings  # noqa: E402
from recommender.serving.cache import ModelCache  # noqa: E402
from recommender.serving.startup import save_cache  # noqa: E402


def main() -> None:
    mode, url, cache_dir, ready = sys.argv[1:5]
    original = ModelCache._atomic_write

    def slow_write(self, name, write):
        time.sleep(random.uniform(0, 0.01))
        return original(self, name, write)

    ModelCache._atomic_write = slow_write
    engine = RecommenderEngine.from_settings(
        Settings(database_url=url, cache_dir=Path(cache_dir), params=TINY_PARAMS))
    Path(ready).write_text("up")
    rng = random.Random()
    while True:
        if mode == "save":
            engine.add_user({rng.randint(1, 10): 10, rng.randint(11, 20): 2, 5: 7})
            save_cache(engine)
        else:
            picked = rng.sample(range(1, 21), 6)
            engine.add_user(dict(zip(picked, [10, 2, 7, 5, 9, 1])))


if __name__ == "__main__":
    main()
