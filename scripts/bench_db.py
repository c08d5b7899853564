"""Print database figures: cold and warm start, ingest rows per second, add_user latency.

    .venv/bin/python scripts/bench_db.py [--postgres URL] [--users 20]

Cold start = an empty database (the bundled data is ingested) and no cache; warm
start = the same database and the saved cache. SQLite runs in a temp dir; for
PostgreSQL a throwaway database is created next to the given one and dropped after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from recommender import RecommenderEngine  # noqa: E402
from recommender.config import Settings, redact_url  # noqa: E402


def measure(name: str, url: str, cache: Path, n_users: int) -> None:
    started = time.perf_counter()
    cold = RecommenderEngine.from_settings(Settings(database_url=url, cache_dir=cache))
    cold_s = time.perf_counter() - started
    info = cold.build_info
    rows = cold.data.ratings.nnz
    print(f"{name}: cold start {cold_s:.1f}s (ingest {info['ingest_seconds']:.1f}s = "
          f"{rows / max(info['ingest_seconds'], 1e-9):,.0f} ratings/s, load "
          f"{info['load_seconds']:.1f}s, fit+save {info['build_seconds']:.1f}s)")
    started = time.perf_counter()
    warm = RecommenderEngine.from_settings(Settings(database_url=url, cache_dir=cache))
    warm_s = time.perf_counter() - started
    winfo = warm.build_info
    print(f"{name}: warm start {warm_s:.1f}s (index {winfo['index']}, load "
          f"{winfo['load_seconds']:.1f}s, models {winfo['build_seconds']:.1f}s)")
    latencies = []
    for i in range(n_users):
        t0 = time.perf_counter()
        warm.add_user({1535: 10, 5114: 9, 9253: 8 + i % 3, 11757: -1})
        latencies.append(time.perf_counter() - t0)
    print(f"{name}: add_user p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms over {n_users} users")
    cold.database.dispose()
    warm.database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_sqlite:
            measure("sqlite", f"sqlite:///{tmp / 'anime.db'}", tmp / "cache-sqlite", args.users)
        if args.postgres:
            admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            name = f"anirec_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
            try:
                url = admin.url.set(database=name).render_as_string(hide_password=False)
                print(f"postgresql: {redact_url(url)}")
                measure("postgresql", url, tmp / "cache-pg", args.users)
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
