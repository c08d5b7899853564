"""Benchmark: build time and memory, latency and neighbour recall at a given scale.

``python -m recommender bench --scale full2016`` generates (once) a synthetic
data set of that scale in the Kaggle CSV format (:mod:`recommender.data.synthetic`),
then measures, in one process and one run:

- reading the CSVs, CSR matrix build (seconds, matrix MiB, traced peak MiB);
- user-user rows, TruncatedSVD vectors and the hnswlib index build;
- ``recommend`` latency p50/p95/p99 for every algorithm (except random) over
  the same sample of users, ``search`` latency over typo'd titles;
- neighbour recall@k of the ANN path against exact cosine on the sparse rows,
  and the exact brute-force latency measured interleaved with the ANN one, so
  their ratio holds on a noisy machine;
- peak RSS after each stage;
- a recall/latency curve over (dim, n_candidates).

Ingest into SQLite/PostgreSQL and the warm load from the persisted cache are
measured by :func:`bench_ingest` and :func:`bench_warm_load` in child
processes, so each peak RSS is that step's own; a missing PostgreSQL server is
reported as ``"status": "unavailable"``.

Results go to ``<out>/<scale>.json`` and ``<out>/<scale>.md``. Figures are
printed, never asserted: machines are noisy.
"""

from __future__ import annotations

import gc
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.config import EngineParams
from recommender.core.jsonio import json_default
from recommender.core.matrix import matrix_nbytes
from recommender.core.profiling import PROFILER, peak_rss_bytes
from recommender.core.types import Snapshot
from recommender.data.catalog import clean_anime, clean_ratings, read_anime_csv
from recommender.models.user_knn import UserKNN
from recommender.serving.engine import RecommenderEngine
from recommender.tools.bench_scale import bench_pg_copy_reference, bench_two_processes
from recommender.tools.bench_startup import bench_ingest, bench_warm_load
from recommender.tools.measure import neighbour_recall, percentiles, sample_users

_log = logging.getLogger(__name__)

MIB = 2**20
SCALE_NAMES = ("tiny", "bundled", "full2016", "full2020")

#: Targets of the full 2016 scale (the issue's numbers); checked at every scale
#: and reported, never asserted.
TARGETS = {
    "matrix_seconds": ("<=", 3.0),
    "matrix_mib": ("<=", 150.0),
    "vectors_index_seconds": ("<=", 12.0),
    "build_peak_rss_mib": ("<=", 1536.0),
    "neighbour_recall": (">=", 0.95),
    "ann_neighbours_p50_ms": ("<=", 5.0),
    "exact_over_ann_ratio": (">=", 8.0),
    "recommend_p50_ms_max": ("<=", 15.0),
    "recommend_p95_ms_max": ("<=", 50.0),
    # The learned ranker scores four models and a LightGBM model per request: the
    # slowest of it and the hybrid over it (known user or what-if list).
    "recommend_ranker_p50_ms": ("<=", 25.0),
    "recommend_ranker_p95_ms": ("<=", 60.0),
    "search_p50_ms": ("<=", 5.0),
    "warm_load_seconds": ("<=", 2.0),
    "pg_ingest_rows_per_second": (">=", 400_000.0),
    # Every model (user-user, content, EASE, mf, blend, and the ranker unless
    # ANIREC_USE_RANKER=0) built and saved in a child process.
    "cold_build_seconds": ("<=", 60.0),
    # "Well under twice one process": two warm processes' combined PSS over one alone.
    "two_process_pss_over_one": ("<=", 1.5),
}

#: Timed against the ranker's own targets: it, and the hybrid (for a known user or a
#: what-if list) when the ranker is its part.
_RANKER = ("ranker", "hybrid")


def _over_ranker(rec: dict, key: str) -> bool:
    """Whether the timed request ``key`` (e.g. "hybrid (liked= list)") runs the ranker."""
    return "ranker" in rec and key.split(" ")[0] in _RANKER

#: (dim, n_candidates) grid of the recall/latency curve, per scale.
CURVES = {
    "tiny": ((8, 16), (20, 50)),
    "bundled": ((32, 64, 128), (100, 200, 400)),
    "full2016": ((32, 64, 128), (100, 200, 400, 800)),
    "full2020": ((64,), (200, 400)),
}


def _rss_mib() -> float:
    return round(peak_rss_bytes() / MIB, 1)


# -- data ------------------------------------------------------------------------------
def dataset_paths(scale: str, data_root: Path, random_state: int = 0) -> tuple[Path, Path, dict]:
    """Kaggle-format ``anime.csv`` and ``rating.csv`` of ``scale``, generated once.

    ``bundled`` means the real bundled files; the other scales are synthetic
    and are written under ``data_root/<scale>`` the first time.
    """
    from recommender.data.catalog import BUNDLED_ANIME, BUNDLED_RATINGS

    if scale == "bundled":
        return BUNDLED_ANIME, BUNDLED_RATINGS, {"source": "real bundled subset"}
    from recommender.data.synthetic import compare_table, generate

    out = data_root / scale
    anime_csv, rating_csv = out / "anime.csv", out / "rating.csv"
    info: dict = {"source": f"synthetic {scale} (seed {random_state})"}
    if not (anime_csv.exists() and rating_csv.exists()):
        stats = generate(scale, out, random_state=random_state, progress=scale != "tiny")
        info["generation_seconds"] = stats["seconds"]
        info["stats"] = stats
        print(compare_table(stats, scale))
        (out / "stats.json").write_text(json.dumps(stats, indent=2))
    elif (out / "stats.json").exists():
        info["stats"] = json.loads((out / "stats.json").read_text())
    return anime_csv, rating_csv, info


def read_ratings_csv(path: Path) -> pd.DataFrame:
    """The ratings CSV with narrow dtypes (int32 ids, int8 rating)."""
    return pd.read_csv(path, dtype={"user_id": np.int32, "anime_id": np.int32,
                                    "rating": np.int8}, engine="c")


# -- build -------------------------------------------------------------------------------
def _stage_seconds(name: str) -> float:
    return round(sum(r.seconds for r in PROFILER.records() if r.stage == name), 3)


def _stage_peak_mib(name: str) -> float | None:
    peaks = [r.peak_bytes for r in PROFILER.records() if r.stage == name and r.peak_bytes]
    return round(max(peaks) / MIB, 1) if peaks else None


def build(anime_csv: Path, rating_csv: Path,
          params: EngineParams) -> tuple[RecommenderEngine, dict]:
    """Build an engine from the CSVs, timing each stage; returns it and the figures."""
    out: dict = {"rss_start_mib": _rss_mib()}
    PROFILER.clear()
    start = time.perf_counter()
    anime = read_anime_csv(anime_csv)
    raw = read_ratings_csv(rating_csv)
    out["csv_read_seconds"] = round(time.perf_counter() - start, 3)
    out["rows"] = int(len(raw))
    out["rss_after_read_mib"] = _rss_mib()

    start = time.perf_counter()
    ratings = clean_ratings(raw)
    del raw
    anime = clean_anime(anime)
    out["clean_seconds"] = round(time.perf_counter() - start, 3)
    gc.collect()

    start = time.perf_counter()
    data = RecommenderEngine.training_data(anime, ratings)
    out["matrix_seconds"] = round(time.perf_counter() - start, 3)
    out["matrix_mib"] = round(matrix_nbytes(data.ratings) / MIB, 1)
    out["matrix_traced_peak_mib"] = _stage_peak_mib("matrix")
    out["dense_equivalent_mib"] = round(data.ratings.shape[0] * data.ratings.shape[1] * 4 / MIB)
    out["rss_after_matrix_mib"] = _rss_mib()
    del ratings
    gc.collect()

    start = time.perf_counter()
    engine = RecommenderEngine.fit(data, params)
    out["fit_seconds"] = round(time.perf_counter() - start, 3)
    for stage in ("popularity fit", "content fit", "similarity rows", "vectors", "index build"):
        out[f"{stage.replace(' fit', '').replace(' ', '_')}_seconds"] = _stage_seconds(stage)
    out["vectors_index_seconds"] = round(out["similarity_rows_seconds"] + out["vectors_seconds"]
                                         + out["index_build_seconds"], 3)
    out["content_traced_peak_mib"] = _stage_peak_mib("content fit")
    out["user_user_traced_peak_mib"] = _stage_peak_mib("user-user fit")
    out["build_peak_rss_mib"] = _rss_mib()
    out["index_mib"] = round(engine.knn.index_.nbytes() / MIB, 1)
    out["vectors_mib"] = round(engine.snapshot.rows.vectors.nbytes / MIB, 1)
    out["shape"] = list(data.ratings.shape)
    out["nnz"] = int(data.ratings.nnz)
    return engine, out


# -- queries -----------------------------------------------------------------------------
def recommend_latency(engine: RecommenderEngine, users: np.ndarray) -> dict:
    """Per-algorithm recommend latency (ms percentiles) over ``users``."""
    out = {}
    for algorithm in engine.algorithms:
        if algorithm == "random":
            continue
        for user in users[:3]:  # warm caches and lazy imports
            engine.recommend(int(user), algorithm=algorithm, n=10)
        times = []
        for user in users:
            start = time.perf_counter()
            engine.recommend(int(user), algorithm=algorithm, n=10)
            times.append((time.perf_counter() - start) * 1000)
        out[algorithm] = percentiles(times)
    # What-if users: each sampled user's five best-rated anime as a liked= list,
    # scored on the fly (vector, ANN query, re-rank) without touching the index.
    lists = [engine.user_ratings(int(u))["anime_id"].head(5).tolist() for u in users]
    times = []
    for liked in lists:
        start = time.perf_counter()
        engine.recommend(liked=liked, algorithm="hybrid", n=10)
        times.append((time.perf_counter() - start) * 1000)
    out["hybrid (liked= list)"] = percentiles(times)
    return out


def typo_queries(engine: RecommenderEngine, n: int, random_state: int = 0) -> list[str]:
    """Real titles, lower-cased, with one character dropped (a typing slip)."""
    names = engine.anime["name"].to_numpy()
    rng = np.random.default_rng(random_state)
    queries = []
    for name in rng.choice(names, size=min(n, len(names)), replace=False):
        text = str(name).lower()
        if len(text) > 4:
            cut = int(rng.integers(1, len(text) - 1))
            text = text[:cut] + text[cut + 1:]
        queries.append(text)
    return queries


def search_latency(engine: RecommenderEngine, queries: list[str]) -> dict:
    for q in queries[:3]:
        engine.search(q)
    times = []
    for q in queries:
        start = time.perf_counter()
        engine.search(q, limit=10)
        times.append((time.perf_counter() - start) * 1000)
    return percentiles(times)


def recall_curve(engine: RecommenderEngine, users: np.ndarray, dims, candidates,
                 params: EngineParams, exact_cache: dict, k: int = 20) -> list[dict]:
    """Recall@k and ANN latency over a (dim, n_candidates) grid; build time per dim."""
    rows = []
    for dim in dims:
        PROFILER.clear()
        start = time.perf_counter()
        knn = UserKNN(params.model("user-user"), dim=int(dim)).fit(engine.data)
        snapshot = Snapshot(engine.data, knn.rows(engine.data.ratings))
        build_s = time.perf_counter() - start
        for n_cand in candidates:
            result = neighbour_recall(knn, snapshot, users, k, n_candidates=int(n_cand),
                                      exact_cache=exact_cache)
            rows.append({"dim": int(dim), "n_candidates": int(n_cand), "recall": result["recall"],
                         "ann_p50_ms": result["ann_ms"]["p50"],
                         "ann_p95_ms": result["ann_ms"]["p95"],
                         "svd_seconds": _stage_seconds("vectors"),
                         "index_seconds": _stage_seconds("index build"),
                         "build_seconds": round(build_s, 2)})
            print(f"  curve dim={dim:<4} n_candidates={n_cand:<5} recall={result['recall']}"
                  f"  ann p50={result['ann_ms']['p50']} ms  build={build_s:.1f} s", flush=True)
        del knn, snapshot
        gc.collect()
    return rows


# -- reporting ---------------------------------------------------------------------------
def check_targets(figures: dict) -> dict:
    """Each target: measured value, bound, and whether it is met (None when not measured)."""
    out = {}
    for name, (op, bound) in TARGETS.items():
        value = figures.get(name)
        met = None if value is None else (value <= bound if op == "<=" else value >= bound)
        out[name] = {"value": value, "target": f"{op} {bound:g}", "met": met}
    return out


def summary_figures(result: dict) -> dict:
    """The flat figures the targets are checked against."""
    build, neigh = result["build"], result["neighbours"]
    rec = result["recommend_ms"]
    warm = result["warm_load"]
    return {
        "matrix_seconds": build["matrix_seconds"], "matrix_mib": build["matrix_mib"],
        "vectors_index_seconds": build["vectors_index_seconds"],
        "build_peak_rss_mib": build["build_peak_rss_mib"],
        "neighbour_recall": neigh["recall"],
        "ann_neighbours_p50_ms": neigh["ann_ms"]["p50"],
        "exact_over_ann_ratio": neigh.get("exact_over_ann_ratio"),
        # The ranker (and the hybrid over it) has targets of its own.
        "recommend_p50_ms_max": max(v["p50"] for k, v in rec.items()
                                    if not _over_ranker(rec, k)),
        "recommend_p95_ms_max": max(v["p95"] for k, v in rec.items()
                                    if not _over_ranker(rec, k)),
        "recommend_ranker_p50_ms": max((v["p50"] for k, v in rec.items()
                                        if _over_ranker(rec, k)), default=None),
        "recommend_ranker_p95_ms": max((v["p95"] for k, v in rec.items()
                                        if _over_ranker(rec, k)), default=None),
        "search_p50_ms": result["search_ms"]["p50"],
        "warm_load_seconds": warm.get("seconds") if isinstance(warm, dict) else None,
        "pg_ingest_rows_per_second": result["ingest_postgresql"].get("rows_per_second"),
        "cold_build_seconds": warm.get("cold_build_seconds"),
        "two_process_pss_over_one": result["two_processes"].get("combined_pss_over_one"),
    }


def to_markdown(result: dict) -> str:
    """The result as Markdown tables (build, latency, targets, curve)."""
    b = result["build"]
    uu = result["params"]["models"]["user-user"]
    lines = [f"# Benchmark: {result['scale']}", "",
             f"{result['data']['source']}; {b['shape'][0]:,} users x {b['shape'][1]:,} anime, "
             f"{b['rows']:,} rows ({b['nnz']:,} stored). "
             f"User-user parameters: dim={uu['dim']}, n_candidates={uu['n_candidates']}, "
             f"M={uu['m']}, ef_construction={uu['ef_construction']}, ef={uu['ef']}. "
             f"{result['machine']}.", "",
             "## Build", "", "| stage | seconds | memory |", "| --- | ---: | --- |",
             f"| read CSVs | {b['csv_read_seconds']} | RSS {b['rss_after_read_mib']} MiB |",
             f"| validate | {b['clean_seconds']} | |",
             f"| CSR matrix | {b['matrix_seconds']} | matrix {b['matrix_mib']} MiB (dense would be "
             f"{b['dense_equivalent_mib']:,} MiB); traced peak {b['matrix_traced_peak_mib']} MiB |",
             f"| popularity | {b['popularity_seconds']} | |",
             f"| content TF-IDF | {b['content_seconds']} | traced peak "
             f"{b['content_traced_peak_mib']} MiB |",
             f"| similarity rows | {b['similarity_rows_seconds']} | |",
             f"| TruncatedSVD vectors | {b['vectors_seconds']} | vectors {b['vectors_mib']} MiB |",
             f"| hnswlib index | {b['index_build_seconds']} | index ~{b['index_mib']} MiB |",
             f"| **vectors + index** | **{b['vectors_index_seconds']}** | |",
             f"| whole build | {b['fit_seconds'] + b['matrix_seconds']:.2f} | peak RSS "
             f"{b['build_peak_rss_mib']} MiB |", "",
             "## Queries (ms, same run)", "", "| what | n | p50 | p95 | p99 |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, p in result["recommend_ms"].items():
        lines.append(f"| recommend {name} | {p['n']} | {p['p50']} | {p['p95']} | {p['p99']} |")
    n = result["neighbours"]
    lines.append(f"| neighbours ANN (k={n['k']}) | {n['ann_ms']['n']} | {n['ann_ms']['p50']} | "
                 f"{n['ann_ms']['p95']} | {n['ann_ms']['p99']} |")
    if "exact_ms" in n:
        e = n["exact_ms"]
        lines.append(f"| neighbours exact brute force | {e['n']} | {e['p50']} | {e['p95']} | "
                     f"{e['p99']} |")
    s = result["search_ms"]
    lines.append(f"| search | {s['n']} | {s['p50']} | {s['p95']} | {s['p99']} |")
    lines += ["", f"Neighbour recall@{n['k']} against exact cosine on the sparse rows: "
              f"**{n['recall']}** (10th percentile {n['recall_p10']}, "
              f"{n['users_with_neighbours']} users); exact / ANN p50 = "
              f"**{n.get('exact_over_ann_ratio')}x**. Peak RSS at the end: "
              f"{result['peak_rss_end_mib']} MiB.", "", "## Targets", "",
              "| target | measured | bound | met |", "| --- | ---: | --- | --- |"]
    for name, t in result["targets"].items():
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {name} | {t['value']} | {t['target']} | {met} |")
    if result.get("curve"):
        lines += ["", "## Recall / latency curve", "",
                  "| dim | n_candidates | recall@20 | ANN p50 ms | ANN p95 ms | SVD s | index s |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in result["curve"]:
            lines.append(f"| {r['dim']} | {r['n_candidates']} | {r['recall']} | {r['ann_p50_ms']} "
                         f"| {r['ann_p95_ms']} | {r['svd_seconds']} | {r['index_seconds']} |")
    lines += ["", "## Ingest and start-up (child processes)", "",
              "| step | status | seconds | rows/s | peak RSS MiB |",
              "| --- | --- | ---: | ---: | ---: |"]
    labels = {"ingest_sqlite": "ingest into sqlite", "ingest_postgresql": "ingest into postgresql",
              "pg_copy_reference": "reference: plain keyed `COPY` of the CSV, same run"}
    for key, label in labels.items():
        v = result[key]
        lines.append(f"| {label} | {v['status']} | {v.get('seconds', '')} "
                     f"| {v.get('rows_per_second', '')} | {v.get('peak_rss_mib', '')} |")
    warm = result["warm_load"]
    if warm.get("status") == "ok":
        lines.append("| cold build-index in a new process (database read, every model "
                     f"fitted, save) | ok | {warm['cold_build_seconds']} | "
                     f"| {warm['cold_peak_rss_mib']} |")
        lines.append(f"| warm start: `from_settings` in a new process (index {warm['index']}, "
                     f"matrix {warm['matrix']}) | ok | {warm['seconds']} | | "
                     f"{warm['peak_rss_mib']} |")
        lines.append(f"| the same process's imports / whole wall time | ok | "
                     f"{warm['imports_seconds']} / {warm['process_seconds']} | | |")
    two = result["two_processes"]
    if two.get("status") == "ok":
        lines += ["", "Two warm processes on one cache (MiB, `/proc/PID/smaps_rollup`): one alone "
                  f"Rss {two['alone']['rss_mib']}, PSS {two['alone']['pss_mib']}, private "
                  f"{two['alone']['private_mib']}; both together PSS {two['combined_pss_mib']}, "
                  f"private {two['combined_private_mib']} "
                  f"(**{two['combined_pss_over_one']}x** one process)."]
    lines += ["", "## Not measured here", ""]
    for key in ("ingest_sqlite", "ingest_postgresql", "pg_copy_reference", "warm_load",
                "two_processes"):
        v = result[key]
        if v.get("status") in ("unavailable", "failed"):
            lines.append(f"- {key}: {v['why']}")
    return "\n".join(lines) + "\n"


# -- driver ------------------------------------------------------------------------------
def run(scale: str, *, out_dir: str | Path = "artifacts/bench",
        data_root: str | Path = "artifacts/synth", n_users: int = 200,
        params: EngineParams | None = None, curve: bool = True, dims=None, candidates=None,
        random_state: int = 0, ingest: bool = True) -> dict:
    """Run the whole benchmark at ``scale``; writes ``<out_dir>/<scale>.json|.md``."""
    if scale not in SCALE_NAMES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALE_NAMES)}")
    params = params or EngineParams()
    out_dir, data_root = Path(out_dir), Path(data_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    anime_csv, rating_csv, data_info = dataset_paths(scale, data_root, random_state)
    result: dict = {"scale": scale, "data": data_info, "params": params.as_dict(),
                    "machine": f"{platform.machine()}, {_cpus()} CPUs, Python "
                               f"{platform.python_version()}",
                    "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    workdir = out_dir / f"{scale}-work"
    skipped = {"status": "unavailable", "why": "skipped (--no-ingest)"}
    result["ingest_sqlite"] = (bench_ingest("sqlite", anime_csv, rating_csv, workdir)
                               if ingest else dict(skipped))
    result["ingest_postgresql"] = (bench_ingest("postgresql", anime_csv, rating_csv, workdir)
                                   if ingest else dict(skipped))
    # The reference right after the engine's ingest, so both see the same load.
    result["pg_copy_reference"] = (bench_pg_copy_reference(rating_csv, workdir)
                                   if ingest else dict(skipped))

    print(f"building at scale {scale} ...", flush=True)
    engine, result["build"] = build(anime_csv, rating_csv, params)
    print(json.dumps(result["build"]), flush=True)
    result["warm_load"] = (bench_warm_load(params, workdir,
                                           result["ingest_sqlite"].get("database_url"))
                           if ingest else dict(skipped))
    result["two_processes"] = (bench_two_processes(params, workdir,
                                                   result["ingest_sqlite"].get("database_url"))
                               if ingest and result["warm_load"].get("status") == "ok"
                               else dict(skipped))

    users = sample_users(engine, n_users, random_state)
    print(f"recommend latency over {len(users)} users ...", flush=True)
    result["recommend_ms"] = recommend_latency(engine, users)
    print("neighbour recall and exact brute force ...", flush=True)
    exact_cache: dict = {}
    result["neighbours"] = neighbour_recall(engine.knn, engine.snapshot, users, 20,
                                            exact_cache=exact_cache)
    result["search_ms"] = search_latency(engine, typo_queries(engine, max(200, n_users),
                                                               random_state))
    result["peak_rss_end_mib"] = _rss_mib()
    if curve:
        default_dims, default_cands = CURVES[scale]
        print("recall / latency curve ...", flush=True)
        result["curve"] = recall_curve(engine, users, dims or default_dims,
                                       candidates or default_cands, params, exact_cache)
    result["figures"] = summary_figures(result)
    result["targets"] = check_targets(result["figures"])
    (out_dir / f"{scale}.json").write_text(json.dumps(result, indent=2, default=json_default))
    (out_dir / f"{scale}.md").write_text(to_markdown(result))
    return result


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


__all__ = ["run", "build", "bench_ingest", "bench_warm_load", "neighbour_recall", "TARGETS"]
