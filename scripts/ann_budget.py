"""Neighbour recall and latency over inverted-index budgets and candidate counts.

Runs against the engine of DATABASE_URL / ANIREC_CACHE_DIR (start it once first, e.g.
``python -m recommender build-index``) and prints, for a sample of users:

- the exact brute-force p50 (the reference);
- recall@k and p50/p95 of the ANN path for each (posting_budget, n_candidates);
- the median time of each step of one ANN query at the engine's own settings.

    DATABASE_URL=sqlite:///artifacts/f16/anime.db ANIREC_CACHE_DIR=artifacts/f16/cache \\
        .venv/bin/python scripts/ann_budget.py --budgets 0,100000,200000 --candidates 200,400

Figures are printed, never asserted: machines are noisy.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender import RecommenderEngine  # noqa: E402
from recommender.models.postings import row_dots  # noqa: E402


def _ms(samples: list[float], q: float = 50) -> float:
    return float(np.percentile(samples, q) * 1000)


def step_times(engine: RecommenderEngine, rows: np.ndarray) -> dict[str, float]:
    """Median milliseconds of each step of the ANN path (as UserKNN.neighbours runs it)."""
    knn, rows_of = engine.knn, engine.snapshot.rows
    want = knn.config.n_candidates + 1
    n_ann = knn.config.ann_candidates + 1
    steps: dict[str, list[float]] = {}

    def clock(name: str, start: float) -> float:
        now = time.perf_counter()
        steps.setdefault(name, []).append(now - start)
        return now

    for user in rows:
        start, end = rows_of.similarity.indptr[user], rows_of.similarity.indptr[user + 1]
        items, values = rows_of.similarity.indices[start:end], rows_of.similarity.data[start:end]
        vector = rows_of.vectors[user]
        if end == start:
            continue
        t = time.perf_counter()
        candidates, _ = knn.index_.query(vector, n_ann, ef=knn.config.ef)
        t = clock("hnswlib query", t)
        postings = knn.posting_candidates(rows_of, items, values, want)
        t = clock("inverted-index candidates", t)
        union = np.union1d(candidates, postings)
        dense = np.zeros(rows_of.similarity.shape[1], dtype=np.float32)
        dense[items] = values
        _sims = row_dots(rows_of.similarity, union, dense)
        clock("union + exact re-rank", t)
    return {name: _ms(values) for name, values in steps.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--budgets", default="-1,0,100000,200000",
                        help="posting budgets; -1 is the automatic share of the ratings")
    parser.add_argument("--candidates", default="150,250,400")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    engine = RecommenderEngine.from_settings()
    knn, snapshot = engine.knn, engine.snapshot
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(snapshot.n_users, min(args.users, snapshot.n_users), replace=False)
    profiles = [engine.profile(int(engine.user_ids()[r])) for r in rows]
    print(f"{snapshot.n_users:,} users; dim={knn.components_.shape[0]}, engine "
          f"posting_budget={knn.posting_budget(snapshot.rows.postings.nnz)}, "
          f"n_candidates={knn.config.n_candidates}, ann_candidates={knn.config.ann_candidates}")

    exact, exact_times = {}, []
    for profile in profiles:
        t = time.perf_counter()
        found = knn.neighbours(profile, snapshot, args.k, exact=True)
        exact_times.append(time.perf_counter() - t)
        exact[profile.user_idx] = set(found.user_idx.tolist())
    print(f"exact brute force p50 {_ms(exact_times):.2f} ms")

    print("steps of one ANN query at the engine's settings (median ms):")
    for name, ms in step_times(engine, rows).items():
        print(f"  {name:28s} {ms:.3f}")

    print("| posting_budget | n_candidates | recall@k | p50 ms | p95 ms | exact/ANN |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for budget in (int(b) for b in args.budgets.split(",")):
        # Each budget gets its own model object sharing the fitted arrays.
        probe = knn.with_config(replace(knn.config, posting_budget=budget))
        for n_candidates in (int(c) for c in args.candidates.split(",")):
            recalls, times = [], []
            for profile in profiles:
                t = time.perf_counter()
                found = probe.neighbours(profile, snapshot, args.k, n_candidates=n_candidates)
                times.append(time.perf_counter() - t)
                truth = exact[profile.user_idx]
                if truth:
                    recalls.append(len(truth & set(found.user_idx.tolist())) / len(truth))
            print(f"| {budget} | {n_candidates} | {np.mean(recalls):.4f} | "
                  f"{_ms(times):.2f} | {_ms(times, 95):.2f} | "
                  f"{_ms(exact_times) / _ms(times):.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
