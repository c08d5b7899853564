"""Peak memory of one process serving the whole dashboard (every page once, AppTest).

Uses the engine of DATABASE_URL / ANIREC_CACHE_DIR, so it measures the app at that
data's scale: the cached engine plus whatever each page builds (the Tune page runs
an offline evaluation the first time). Prints seconds per page and VmHWM/VmRSS.

    DATABASE_URL=sqlite:///artifacts/f16/anime.db ANIREC_CACHE_DIR=artifacts/f16/cache \\
        .venv/bin/python scripts/app_rss.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402


def memory() -> str:
    """This process's peak and current resident memory, from /proc (Linux)."""
    values = {}
    for line in open("/proc/self/status"):
        if line.startswith(("VmHWM:", "VmRSS:")):
            key, kib = line.split()[:2]
            values[key.rstrip(":")] = int(kib) / 1024
    return f"peak RSS {values['VmHWM']:,.0f} MiB, now {values['VmRSS']:,.0f} MiB"


def main() -> int:
    import app_state

    started = time.perf_counter()
    engine = app_state.get_engine()
    print(f"engine ready in {time.perf_counter() - started:.2f} s; {memory()}")
    user = str(int(engine.user_ids()[len(engine.user_ids()) // 2]))
    for name, query in [("home.py", {}), ("recommend.py", {"user": user}),
                        ("neighbours.py", {"user": user}), ("performance.py", {}),
                        ("tune.py", {})]:
        at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=600)
        for key, value in query.items():
            at.query_params[key] = value
        started = time.perf_counter()
        at.run()
        print(f"{name:16s} {time.perf_counter() - started:6.2f} s, "
              f"{len(at.exception)} exceptions; {memory()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
