"""Time and peak memory of one EASE fit at the full 2016 scale, on a synthetic matrix.

The 2016 Kaggle ratings have 73,515 users and about 11k anime with at least 10
ratings (7.8M rows). This draws a matrix of that shape with a long-tailed
anime popularity (Zipf-like, as real catalogues have), fits EASE on it and
prints wall time and the process's peak resident memory (the fit runs in a
fresh process, so the peak is the fit's own plus the interpreter and inputs).

    .venv/bin/python scripts/ease_memory.py [--users 73515 --items 11000 --nnz 7800000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.models.ease import ease_weights, gram_matrix, preference_values  # noqa: E402


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def synthetic(n_users: int, n_items: int, nnz: int, seed: int = 0) -> sp.csr_matrix:
    """Raw ratings (-1 or 1..10) with Zipf-like anime popularity and long-tailed list lengths."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()
    lengths = rng.lognormal(mean=0.0, sigma=1.0, size=n_users)
    lengths = np.maximum(1, np.round(lengths / lengths.sum() * nnz)).astype(np.int64)
    rows = np.repeat(np.arange(n_users), lengths)
    cols = rng.choice(n_items, size=len(rows), p=popularity)
    ratings = rng.choice(np.array([-1, 5, 6, 7, 8, 9, 10], np.float32), size=len(rows),
                         p=[0.19, 0.06, 0.1, 0.17, 0.2, 0.15, 0.13])
    x = sp.csr_matrix((ratings, (rows, cols)), shape=(n_users, n_items))
    x.sum_duplicates()
    x.data = np.clip(x.data, -1, 10)  # a summed duplicate is still one rating
    return x


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=73515)
    parser.add_argument("--items", type=int, default=11000)
    parser.add_argument("--nnz", type=int, default=7_800_000)
    parser.add_argument("--lam", type=float, default=100.0)
    args = parser.parse_args(argv)
    raw = synthetic(args.users, args.items, args.nnz)
    # Popular anime draw repeats, which merge: draw once more, scaled up, to reach --nnz.
    raw = synthetic(args.users, args.items, int(args.nnz * args.nnz / raw.nnz))
    x = sp.csr_matrix((preference_values(raw.data, weighting="rating", watched_value=0.5,
                                         dislike_below=5.0), raw.indices, raw.indptr),
                      shape=raw.shape)
    del raw
    before = rss_mib()
    print(f"matrix: {x.shape[0]:,} users x {x.shape[1]:,} anime, {x.nnz:,} ratings; "
          f"peak RSS before the fit {before:.0f} MiB", flush=True)
    t0 = time.perf_counter()
    gram = gram_matrix(x)
    t1 = time.perf_counter()
    weights = ease_weights(gram, args.lam)
    t2 = time.perf_counter()
    peak = rss_mib()
    print(f"Gram (compiled pair loop -> dense float32): {t1 - t0:.1f}s")
    print(f"in-place Cholesky inverse (potrf + potri) and scaling: {t2 - t1:.1f}s")
    print(f"EASE fit total: {t2 - t0:.1f}s; peak RSS {peak:.0f} MiB "
          f"(weights alone {weights.nbytes / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
