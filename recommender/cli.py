"""Command line: ``python -m recommender <command> ...``.

Bad arguments print one line to stderr and exit 2; expected failures (unknown
user, no database...) print one line and exit 1. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from recommender.config import load_settings
from recommender.core import jsonio
from recommender.core.redact import redact_text
from recommender.errors import RecommenderError
from recommender.serving.engine import RecommenderEngine

_log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


def load_engine(args: argparse.Namespace):
    """The engine the commands query: the database in DATABASE_URL plus the index cache."""
    return RecommenderEngine.from_settings()


def _print_frame(frame: pd.DataFrame, columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        records = frame.to_dict(orient="records")
        print(jsonio.dumps({"rows": records, "meta": dict(frame.attrs)}, ensure_ascii=False,
                           indent=2))
        return
    shown = frame[[c for c in columns if c in frame.columns]]
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(shown.to_string(index=False) if len(shown) else "(nothing found)")


def _liked_from_args(engine, titles: Sequence[str], ids: Sequence[int]) -> dict:
    liked: dict[int, float | None] = {int(i): None for i in ids}
    for title in titles:
        text, _, rating = title.rpartition("=") if "=" in title else (title, "", "")
        try:
            value = float(rating) if rating.strip() else None
        except ValueError:
            raise _UsageError(f"--liked {title!r}: the rating after '=' must be a number"
                              ) from None
        anime_id = engine.resolve_title(text.strip())
        liked[anime_id] = value
        print(f"  {text.strip()!r} -> {engine.anime_by_id([anime_id])['name'].iloc[0]} "
              f"(id {anime_id})", file=sys.stderr)
    return liked


def cmd_recommend(args: argparse.Namespace) -> int:
    engine = load_engine(args)
    liked = None
    if args.liked or args.liked_id:
        liked = _liked_from_args(engine, args.liked, args.liked_id)
    elif args.user is None:
        raise _UsageError("give --user ID, or --liked TITLE / --liked-id ID")
    frame = engine.recommend(args.user if liked is None else None, liked=liked,
                             algorithm=args.algorithm, weight=args.weight, n=args.n, k=args.k,
                             collaborative=args.collaborative, diversity=args.diversity)
    if not args.json and frame.attrs.get("fallback"):
        print(f"note: {frame.attrs['requested']} had nothing to go on; "
              f"used {frame.attrs['method']}", file=sys.stderr)
    _print_frame(frame, ["rank", "anime_id", "name", "score", "reason"], args.json)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    engine = load_engine(args)
    frame = engine.search(args.query, limit=args.limit)
    _print_frame(frame, ["anime_id", "name", "matched_title", "match_score", "type", "members"],
                 args.json)
    return 0


def cmd_neighbors(args: argparse.Namespace) -> int:
    engine = load_engine(args)
    frame = engine.neighbors(args.user, k=args.k, exact=args.exact)
    _print_frame(frame, ["rank", "user_id", "similarity", "shared", "n_ratings"], args.json)
    return 0


# --------------------------------------------------------------------------- database commands
def cmd_ingest(args: argparse.Namespace) -> int:
    from recommender.data.database import create_db_engine, create_tables
    from recommender.data.ingest import ingest

    if args.anime is None and args.ratings is None:
        raise _UsageError("give --anime PATH and/or --ratings PATH")
    settings = load_settings()
    database = create_db_engine(settings.database_url)
    create_tables(database)
    report = ingest(database, args.anime, args.ratings, progress=not args.quiet)
    print(f"added {report.anime_added} anime, {report.users_added} users and "
          f"{report.ratings_added} ratings ({report.ratings_in_file} rows read) in "
          f"{report.seconds:.1f}s to {settings.redacted_database_url}")
    if report.ratings_added or report.anime_added:
        print("the index is rebuilt on the next start (or run: python -m recommender "
              "build-index)")
    return 0


def cmd_build_index(args: argparse.Namespace) -> int:
    engine = RecommenderEngine.from_settings(rebuild=True)
    info = engine.build_info
    built = (f"built every model over {len(engine.user_ids())} users in "
             f"{info['build_seconds']:.1f}s")
    if info.get("cache_save_problem"):
        print(f"error: {built}, but cannot save them to {info['cache']}: "
              f"{info['cache_save_problem']}", file=sys.stderr)
        return 1
    print(f"{built}; saved to {info['cache']}")
    return 0


def cmd_train_mf(args: argparse.Namespace) -> int:
    # Imported here: pyspark is an optional extra, and only this command needs it.
    from recommender.tools.spark_mf import train_mf

    report = train_mf(args.spark)
    saved = ("replaced the mf model in" if report.wrote == "model"
             else "fitted the other models and saved everything to")
    print(f"trained mf with Spark ({args.spark}) on {report.ratings} ratings of "
          f"{report.users} users in {report.spark_seconds:.1f}s "
          f"({report.total_seconds:.1f}s in all); {saved} {report.cache}")
    return 0


def cmd_add_user(args: argparse.Namespace) -> int:
    engine = load_engine(args)
    if not args.liked and not args.liked_id:
        raise _UsageError("give at least one --liked TITLE[=RATING] or --liked-id ID")
    liked = _liked_from_args(engine, args.liked, args.liked_id)
    user_id = engine.add_user(liked)
    print(user_id)
    return 0


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m recommender", description="Hybrid anime recommender")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    rec = sub.add_parser("recommend", help="recommend anime for a user or a list of titles")
    rec.add_argument("--user", type=int, help="a known user id")
    rec.add_argument("--liked", action="append", default=[], metavar="TITLE[=RATING]",
                     help="a title you liked, resolved by fuzzy search (repeatable)")
    rec.add_argument("--liked-id", action="append", default=[], type=int, metavar="ANIME_ID")
    rec.add_argument("--algorithm", default=None,
                     help="hybrid, ranker, ease, user-user, content, popularity, ... "
                          "(default: the engine's default_algorithm)")
    rec.add_argument("--collaborative", default=None,
                     help="collaborative part of the hybrid (default: hybrid_collaborative)")
    rec.add_argument("--weight", type=float, default=None, help="collaborative share in [0, 1]")
    rec.add_argument("-n", type=int, default=10, help="how many anime")
    rec.add_argument("-k", type=int, default=None, help="neighbours for user-user")
    rec.add_argument("--diversity", type=float, default=0.0,
                     help="0 (plain ranking) to 1 (as varied in genre as possible)")
    rec.add_argument("--json", action="store_true", help="print JSON")
    rec.set_defaults(func=cmd_recommend)

    srch = sub.add_parser("search", help="fuzzy title search")
    srch.add_argument("query")
    srch.add_argument("--limit", type=int, default=10)
    srch.add_argument("--json", action="store_true")
    srch.set_defaults(func=cmd_search)

    nb = sub.add_parser("neighbors", help="a user's nearest users")
    nb.add_argument("--user", type=int, required=True)
    nb.add_argument("-k", type=int, default=20)
    nb.add_argument("--exact", action="store_true", help="brute force instead of the ANN index")
    nb.add_argument("--json", action="store_true")
    nb.set_defaults(func=cmd_neighbors)

    ing = sub.add_parser("ingest", help="load Kaggle CSVs (anime.csv, rating.csv, .gz) "
                                        "into the database")
    ing.add_argument("--anime", metavar="PATH", help="anime.csv")
    ing.add_argument("--ratings", metavar="PATH", help="rating.csv (or .csv.gz)")
    ing.add_argument("--quiet", action="store_true", help="no progress bars")
    ing.set_defaults(func=cmd_ingest)

    bi = sub.add_parser("build-index", help="rebuild the user-user index and save it")
    bi.set_defaults(func=cmd_build_index)

    tm = sub.add_parser("train-mf", help="train the mf model with Spark's ALS (past one "
                        "machine) and save its factors into the model cache")
    tm.add_argument("--spark", required=True, metavar="MASTER",
                    help="Spark master: local[2], or a cluster URL such as spark://host:7077")
    tm.set_defaults(func=cmd_train_mf)

    au = sub.add_parser("add-user", help="save a new user; prints the new user id")
    au.add_argument("--liked", action="append", default=[], metavar="TITLE[=RATING]",
                    help="a title the user liked, resolved by fuzzy search (repeatable)")
    au.add_argument("--liked-id", action="append", default=[], type=int, metavar="ANIME_ID")
    au.set_defaults(func=cmd_add_user)

    add_scale_commands(sub)
    _add_evaluate(sub)
    _add_serve(sub)
    # -- reliability: the concurrency stress run (recommender/stress_cli.py)
    from recommender.tools.stress import add_stress_command

    add_stress_command(sub)
    return parser


# ---------------------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    """Offline evaluation on the bundled data (its own engines, fitted on the train side)."""
    from tqdm import tqdm

    from recommender.data.catalog import load_bundled_anime, load_bundled_ratings
    from recommender.evaluation import ALGORITHMS, EvalSpec, evaluate, metrics_text

    if args.users < 0 or args.k < 1:
        raise _UsageError("--users must be >= 0 and --k >= 1")
    algorithms = tuple(a.strip() for a in args.algorithms.split(",") if a.strip())
    settings = load_settings()
    spec = EvalSpec(split=args.split, n_users=args.users, k=args.k, random_state=args.seed,
                    params=settings.params, algorithms=algorithms or ALGORITHMS,
                    collaborative=args.collaborative)
    bar = tqdm(total=None, desc=f"evaluating ({args.split})", unit="user", file=sys.stderr,
               disable=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    result = evaluate(load_bundled_anime(), load_bundled_ratings(), spec, progress=progress,
                      cache_dir=None if args.no_cache else settings.eval_cache_dir)
    bar.close()
    print(metrics_text(result))
    if args.json:
        args.json.write_text(jsonio.dumps(result.to_json(), indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _add_evaluate(sub) -> None:
    ev = sub.add_parser("evaluate", help="offline metrics of every algorithm and hybrid weight")
    ev.add_argument("--users", type=int, default=1000, help="users to evaluate (0 = all)")
    ev.add_argument("--seed", type=int, default=0, help="split and sampling seed")
    ev.add_argument("--k", type=int, default=10, help="list length for the metrics")
    ev.add_argument("--split", choices=("validation", "test"), default="validation")
    ev.add_argument("--json", type=Path, default=None, metavar="PATH", help="write JSON here")
    ev.add_argument("--algorithms", default="",
                    help="comma-separated algorithms to evaluate alone (default: all)")
    ev.add_argument("--collaborative", default="",
                    help="the hybrid's collaborative part in the weight sweep "
                         "(default: the engine's hybrid_collaborative)")
    ev.add_argument("--no-cache", action="store_true", help="recompute even when cached")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_evaluate)


# ---------------------------------------------------------------------------- HTTP API
def cmd_serve(args: argparse.Namespace) -> int:
    """The HTTP API; FastAPI and uvicorn are imported only here, not for the other commands."""
    from recommender.api.server import serve

    if not 1 <= args.port <= 65535 or args.workers < 1:
        raise _UsageError("--port must be in 1..65535 and --workers >= 1")
    serve(args.host, args.port, args.workers, access_log=not args.no_access_log)
    return 0


def cmd_loadtest(args: argparse.Namespace) -> int:
    from recommender.tools.loadtest import run_loadtest

    return run_loadtest(args)


def _add_serve(sub) -> None:
    sv = sub.add_parser("serve", help="the HTTP API (FastAPI on uvicorn)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--workers", type=int, default=1, help="processes, each with its engine")
    sv.add_argument("--no-access-log", action="store_true", help="no line per request")
    sv.set_defaults(func=cmd_serve)
    from recommender.tools.loadtest import add_arguments

    lt = sub.add_parser("loadtest", help="drive the HTTP API with wrk on loopback; prints figures")
    add_arguments(lt)
    lt.set_defaults(func=cmd_loadtest)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RecommenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if args.verbose:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"error: unexpected {type(exc).__name__}: {redact_text(first)[:300]} "
              "(run with -v for the details)", file=sys.stderr)
        return 1


# -- scale: synthetic data and benchmarks ---------------------------------------------------
def cmd_synth(args: argparse.Namespace) -> int:
    from recommender.data.synthetic import compare_table, generate

    stats = generate(args.scale, args.out, random_state=args.seed, progress=True)
    print(compare_table(stats, args.scale))
    print(f"wrote {args.out}/anime.csv and {args.out}/rating.csv in {stats['seconds']} s")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from recommender.tools.bench import run

    overrides = {k: v for k, v in (("dim", args.dim), ("n_candidates", args.n_candidates),
                                   ("ef", args.ef)) if v is not None}
    params = load_settings().params.with_model("user-user", **overrides)
    dims = [int(x) for x in args.curve_dims.split(",")] if args.curve_dims else None
    cands = [int(x) for x in args.curve_candidates.split(",")] if args.curve_candidates else None
    result = run(args.scale, out_dir=args.out, data_root=args.data_root, n_users=args.users,
                 params=params, curve=not args.no_curve, dims=dims, candidates=cands,
                 ingest=not args.no_ingest,
                 random_state=args.seed)
    print((Path(args.out) / f"{args.scale}.md").read_text())
    missed = [k for k, t in result["targets"].items() if t["met"] is False]
    print("targets missed: " + (", ".join(missed) if missed else "none"))
    return 0


def add_scale_commands(sub) -> None:
    """The ``synth`` and ``bench`` subcommands."""
    from recommender.tools.bench import SCALE_NAMES

    syn = sub.add_parser("synth", help="write a synthetic data set in the Kaggle CSV format")
    syn.add_argument("--scale", choices=SCALE_NAMES, default="bundled")
    syn.add_argument("--out", required=True, help="directory for anime.csv and rating.csv")
    syn.add_argument("--seed", type=int, default=0)
    syn.set_defaults(func=cmd_synth)

    bench = sub.add_parser("bench", help="build, latency, recall and memory benchmark")
    bench.add_argument("--scale", choices=SCALE_NAMES, default="bundled")
    bench.add_argument("--out", default="artifacts/bench", help="where the JSON/Markdown go")
    bench.add_argument("--data-root", default="artifacts/synth",
                       help="where synthetic data sets are generated (once) and reused")
    bench.add_argument("--users", type=int, default=200, help="users sampled for latency")
    bench.add_argument("--dim", type=int, default=None, help="override the vector dimensions")
    bench.add_argument("--n-candidates", type=int, default=None)
    bench.add_argument("--ef", type=int, default=None, help="override hnswlib ef")
    bench.add_argument("--no-curve", action="store_true", help="skip the recall/latency curve")
    bench.add_argument("--no-ingest", action="store_true",
                       help="skip the database ingest and warm-start steps")
    bench.add_argument("--curve-dims", default=None, help="e.g. 32,64,128")
    bench.add_argument("--curve-candidates", default=None, help="e.g. 100,200,400")
    bench.add_argument("--seed", type=int, default=0)
    bench.set_defaults(func=cmd_bench)
