"""Measurements of a running engine: latency samples, and the index against exact search.

The dashboard's Performance page and the benchmarks both use these, so the
figures they show are computed one way. Nothing here changes the engine: the
search width ``ef`` is a per-query argument.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from recommender.core.types import Snapshot
from recommender.errors import InvalidParameterError
from recommender.evaluation.metrics import tie_aware_recall
from recommender.models.user_knn import UserKNN
from recommender.serving.requests import user_profile


def percentiles(samples_ms: list[float]) -> dict:
    """p50/p95/p99/mean of a list of milliseconds (rounded to 0.01 ms)."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if not len(a):
        return {"n": 0}
    return {"n": int(len(a)), "p50": round(float(np.percentile(a, 50)), 2),
            "p95": round(float(np.percentile(a, 95)), 2),
            "p99": round(float(np.percentile(a, 99)), 2), "mean": round(float(a.mean()), 2)}


def recall_at_k(found: Iterable[int], reference: Iterable[int]) -> float:
    """Share of ``reference`` ids that ``found`` also holds (1.0 for an empty reference)."""
    reference = set(int(x) for x in reference)
    if not reference:
        return 1.0
    return len(reference & set(int(x) for x in found)) / len(reference)


def sample_users(engine, n: int, random_state: int = 0) -> np.ndarray:
    """``n`` distinct known user ids, drawn reproducibly."""
    ids = engine.user_ids()
    if n < 1:
        raise InvalidParameterError(f"sample size must be at least 1, got {n}")
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(ids, size=min(n, len(ids)), replace=False))


def latency_sample(engine, users: Sequence[int], algorithms: Sequence[str],
                   n: int = 10) -> pd.DataFrame:
    """Wall milliseconds of ``engine.recommend`` per user and algorithm.

    Columns: ``algorithm``, ``user_id``, ``ms``. Each algorithm runs once for
    one user first, untimed, so lazy set-up does not count as latency.
    """
    rows = []
    for algorithm in algorithms:
        if len(users):
            engine.recommend(int(users[0]), algorithm=algorithm, n=n)
        for user in users:
            start = time.perf_counter()
            engine.recommend(int(user), algorithm=algorithm, n=n)
            rows.append((algorithm, int(user), (time.perf_counter() - start) * 1000.0))
    return pd.DataFrame(rows, columns=["algorithm", "user_id", "ms"])


def latency_summary(sample: pd.DataFrame) -> pd.DataFrame:
    """p50, p95 and mean milliseconds per algorithm of a :func:`latency_sample`."""
    grouped = sample.groupby("algorithm", sort=False)["ms"]
    return pd.DataFrame({
        "p50_ms": grouped.quantile(0.5),
        "p95_ms": grouped.quantile(0.95),
        "mean_ms": grouped.mean(),
        "requests": grouped.size(),
    }).reset_index()


def ann_vs_exact(engine, users: Sequence[int], k: int, ef: int,
                 n_candidates: int | None = None) -> dict:
    """Neighbour recall and latency of the index at search width ``ef`` against brute force.

    For each user: the engine's ANN neighbours (``n_candidates`` index hits
    re-ranked by exact cosine), the index alone (its top ``k`` by vector cosine)
    and the exact top ``k``. hnswlib searches ``max(ef, n_candidates + 1)`` wide,
    so ``ef`` matters once it exceeds the candidate count. ``ef`` applies to these
    queries only; the engine is not changed.

    Recall is tie-aware (:func:`~recommender.evaluation.metrics.tie_aware_recall`):
    a found user as similar as the k-th exact neighbour counts as found. The
    index alone is judged by its users' exact similarities too.

    Returns ``summary`` (dict: mean recalls and mean/p95 milliseconds) and
    ``per_user`` (DataFrame: ``user_id``, ``recall_reranked``,
    ``recall_index_only``, ``ann_ms``, ``exact_ms``).
    """
    if ef < 1 or k < 1:
        raise InvalidParameterError("ef and k must be at least 1")
    if n_candidates is not None and n_candidates < 1:
        raise InvalidParameterError("n_candidates must be at least 1")
    knn, snapshot = engine.knn, engine.snapshot
    rows = []
    for user in users:
        profile = engine.profile(int(user))
        start = time.perf_counter()
        ann = knn.neighbours(profile, snapshot, k, n_candidates=n_candidates, ef=ef)
        ann_ms = (time.perf_counter() - start) * 1000.0
        start = time.perf_counter()
        exact = knn.neighbours(profile, snapshot, k, exact=True)
        exact_ms = (time.perf_counter() - start) * 1000.0
        labels, _ = knn.index_.query(snapshot.rows.vectors[profile.user_idx], k + 1, ef=ef)
        labels = labels[(labels != profile.user_idx) & (labels < snapshot.n_users)][:k]
        rows.append((int(user),
                     tie_aware_recall(ann.user_idx, ann.similarity, exact.user_idx,
                                      exact.similarity),
                     tie_aware_recall(labels, exact_similarity(snapshot, profile.user_idx,
                                                               labels),
                                      exact.user_idx, exact.similarity),
                     ann_ms, exact_ms))
    per_user = pd.DataFrame(rows, columns=["user_id", "recall_reranked", "recall_index_only",
                                           "ann_ms", "exact_ms"])
    summary = {
        "ef": int(ef), "k": int(k),
        "n_candidates": int(knn.config.n_candidates if n_candidates is None else n_candidates),
        "users": len(per_user),
        "recall_reranked": float(per_user["recall_reranked"].mean()) if rows else float("nan"),
        "recall_index_only": float(per_user["recall_index_only"].mean()) if rows else float("nan"),
        "ann_ms_mean": float(per_user["ann_ms"].mean()) if rows else float("nan"),
        "ann_ms_p95": float(per_user["ann_ms"].quantile(0.95)) if rows else float("nan"),
        "exact_ms_mean": float(per_user["exact_ms"].mean()) if rows else float("nan"),
        "exact_ms_p95": float(per_user["exact_ms"].quantile(0.95)) if rows else float("nan"),
    }
    return {"summary": summary, "per_user": per_user}


def exact_similarity(snapshot: Snapshot, user_idx: int, others: np.ndarray) -> np.ndarray:
    """Exact cosine of user ``user_idx`` with each of ``others`` (positions), as the re-rank."""
    rows = snapshot.rows.similarity
    others = np.asarray(others, dtype=np.int64)
    if len(others) == 0:
        return np.empty(0, np.float32)
    query = rows[int(user_idx)]
    dense = np.zeros(rows.shape[1], dtype=np.float32)
    dense[query.indices] = query.data
    return np.asarray(rows[others] @ dense, dtype=np.float32)


def neighbour_recall(knn: UserKNN, snapshot: Snapshot, users: np.ndarray, k: int = 20,
                     n_candidates: int | None = None, exact_cache: dict | None = None) -> dict:
    """ANN recall@k against exact sparse cosine, and both latencies, interleaved per user.

    Recall per user is |ANN top-k ∩ exact top-k| / |exact top-k|, over users who
    have at least one neighbour, with ties at the cut-off counted as found
    (:func:`~recommender.evaluation.metrics.tie_aware_recall`). ``exact_cache``
    (user -> exact neighbours) is filled and reused so a curve does not repeat
    the brute force.
    """
    recalls, ann_ms, exact_ms = [], [], []
    for user in users:
        profile = user_profile(snapshot, int(user))
        start = time.perf_counter()
        ann = knn.neighbours(profile, snapshot, k, n_candidates=n_candidates)
        ann_ms.append((time.perf_counter() - start) * 1000)
        if exact_cache is not None and int(user) in exact_cache:
            exact = exact_cache[int(user)]
        else:
            start = time.perf_counter()
            exact = knn.neighbours(profile, snapshot, k, exact=True)
            exact_ms.append((time.perf_counter() - start) * 1000)
            if exact_cache is not None:
                exact_cache[int(user)] = exact
        if len(exact.user_idx):
            recalls.append(tie_aware_recall(ann.user_idx, ann.similarity, exact.user_idx,
                                            exact.similarity))
    out = {"k": k, "users_with_neighbours": len(recalls),
           "recall": round(float(np.mean(recalls)), 4) if recalls else None,
           "recall_p10": round(float(np.percentile(recalls, 10)), 4) if recalls else None,
           "ann_ms": percentiles(ann_ms)}
    if exact_ms:
        out["exact_ms"] = percentiles(exact_ms)
        out["exact_over_ann_ratio"] = round(out["exact_ms"]["p50"] / out["ann_ms"]["p50"], 1)
    return out



def ef_sweep(engine, users: Sequence[int], k: int, efs: Sequence[int],
             n_candidates: int | None = None) -> pd.DataFrame:
    """:func:`ann_vs_exact` at each search width in ``efs``: one row per ``ef``.

    Columns: ``ef``, ``recall_reranked``, ``recall_index_only``, ``ann_ms``
    (mean) and ``search_width``, the width hnswlib really searches
    (max(ef, candidates + 1) on the re-ranked path), so a chart can show where
    ``ef`` starts to matter.
    """
    candidates = engine.knn.config.n_candidates if n_candidates is None else n_candidates
    rows = []
    for ef in efs:
        s = ann_vs_exact(engine, users, k=k, ef=int(ef), n_candidates=n_candidates)["summary"]
        rows.append((int(ef), s["recall_reranked"], s["recall_index_only"], s["ann_ms_mean"],
                     max(int(ef), int(max(k, candidates)) + 1)))
    return pd.DataFrame(rows, columns=["ef", "recall_reranked", "recall_index_only", "ann_ms",
                                       "search_width"])
