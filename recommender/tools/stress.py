"""``python -m recommender stress``: the concurrency stress run on a throwaway database.

Builds a temporary SQLite database and cache (the bundled data, or the small
two-taste synthetic set with ``--small``), runs :func:`run_stress`, then checks
that nothing was lost: database, matrix and index agree, every added user is a
neighbour of an identical what-if user, and a restart reloads them all.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from recommender.config import Settings, load_environ, params_from_env
from recommender.data.synthetic import two_taste_groups
from recommender.serving.engine import RecommenderEngine
from recommender.tools.bench_startup import throwaway_database
from recommender.tools.reliability import find_added_users, run_stress, verify_consistency


def stress_check(settings: Settings, seconds: float, threads: int,
                 writer_threads: int | None = None, random_state: int = 0) -> dict:
    """Start an engine on ``settings``, stress it, verify it, restart and verify again."""
    t0 = time.perf_counter()
    engine = RecommenderEngine.from_settings(settings)
    start_seconds = time.perf_counter() - t0
    report = run_stress(engine, seconds, threads, writer_threads, random_state=random_state)
    problems = verify_consistency(engine)
    not_found = find_added_users(engine, report.added)
    restarted = RecommenderEngine.from_settings(settings)
    missing_after_restart = [u for u, _ in report.added if not restarted.has_user(u)]
    problems_after_restart = verify_consistency(restarted)
    figures = report.figures()
    figures.update({
        "start_seconds": round(start_seconds, 2),
        "users_before": int(len(engine.user_ids()) - report.users_added),
        "errors_sample": report.errors[:5],
        "consistency_problems": problems,
        "added_not_found_as_neighbour": not_found,
        "missing_after_restart": missing_after_restart,
        "restart_index": restarted.build_info.get("index"),
        "restart_users_caught_up": restarted.build_info.get("users_caught_up"),
        "consistency_problems_after_restart": problems_after_restart,
    })
    figures["nothing_lost"] = not (report.errors or problems or not_found
                                   or missing_after_restart or problems_after_restart)
    return figures


def _fill_small(url: str, directory: Path) -> None:
    from recommender.data.database import create_db_engine, create_tables
    from recommender.data.ingest import ingest

    anime, ratings = two_taste_groups(100, n_anime_per_group=20, own=8, other=3,
                                      own_ratings=(7, 10), other_ratings=(1, 3))
    anime_path, ratings_path = directory / "anime.csv", directory / "rating.csv"
    anime.to_csv(anime_path, index=False)
    ratings.to_csv(ratings_path, index=False)
    database = create_db_engine(url)
    create_tables(database)
    ingest(database, anime_path, ratings_path)
    database.dispose()


def cmd_stress(args: argparse.Namespace) -> int:
    from recommender.errors import InvalidParameterError

    if not args.seconds > 0 or args.threads < 2 or (args.writers is not None
                                                    and not 1 <= args.writers < args.threads):
        raise InvalidParameterError("need --seconds > 0, --threads >= 2 and "
                                    "1 <= --writers < --threads")
    params = params_from_env(load_environ())
    with tempfile.TemporaryDirectory(prefix="anirec-stress-") as tmp:
        directory = Path(tmp)
        url, drop = throwaway_database(args.database, directory)
        try:
            if args.small:
                _fill_small(url, directory)
                params = params.with_model("user-user", dim=8, n_neighbours=10,
                                           n_candidates=40, ef=50)
            # else an empty database: the first start ingests the bundled data
            settings = Settings(database_url=url, cache_dir=directory / "cache", params=params)
            figures = stress_check(settings, args.seconds, args.threads, args.writers,
                                   args.seed)
        finally:
            drop()
    figures["data"] = "small synthetic" if args.small else "bundled"
    figures["database"] = args.database
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(figures, indent=2))
    print(f"data: {figures['data']} on {figures['database']} ({figures['users_before']} users; "
          f"start "
          f"{figures['start_seconds']} s)")
    print(f"load: {figures['threads']} threads ({figures['writer_threads']} adding users) "
          f"for {figures['seconds']} s")
    print(f"operations: {figures['queries']} queries {figures['query_counts']}, "
          f"{figures['users_added']} users added")
    print(f"throughput: {figures['queries_per_second']} queries/s, "
          f"{figures['users_added_per_second']} users added/s")
    print(f"errors: {figures['errors']}; consistency problems: "
          f"{len(figures['consistency_problems'])}; added users not found as neighbour: "
          f"{len(figures['added_not_found_as_neighbour'])}; missing after restart: "
          f"{len(figures['missing_after_restart'])} (restart: index "
          f"{figures['restart_index']}, {figures['restart_users_caught_up']} caught up)")
    print("result: nothing lost" if figures["nothing_lost"] else "result: PROBLEMS FOUND")
    for line in (figures["errors_sample"] + figures["consistency_problems"]
                 + figures["consistency_problems_after_restart"]):
        print(f"  {line}")
    return 0 if figures["nothing_lost"] else 1


def add_stress_command(sub) -> None:
    """The ``stress`` subcommand."""
    st = sub.add_parser("stress", help="concurrency stress test on a throwaway database")
    st.add_argument("--seconds", type=float, default=45.0, help="how long the load runs")
    st.add_argument("--threads", type=int, default=8, help="threads in all")
    st.add_argument("--writers", type=int, default=None,
                    help="of which add users (default: a quarter)")
    st.add_argument("--small", action="store_true",
                    help="a small synthetic data set instead of the bundled data")
    st.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                    help="a throwaway SQLite file, or a throwaway database on the PostgreSQL "
                         "server of ANIREC_BENCH_POSTGRES (default 127.0.0.1:5432)")
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--out", default="artifacts/stress.json", help="JSON figures ('' = none)")
    st.set_defaults(func=cmd_stress)
