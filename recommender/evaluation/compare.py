"""Comparisons to trust: paired bootstrap intervals against a baseline, item segments, curves.

- :func:`paired_ratio_ci`: the ratio of two algorithms' mean NDCG over the same
  users, with a percentile interval from resampling users (both lists of a user
  move together, so the interval is paired).
- Item segments: ``head`` is the most-watched anime that together hold half of
  the training views, ``tail`` the rest; a segment's NDCG counts only the
  user's relevant anime in it (users with none there are left out).
- :func:`diversity_curve`: NDCG, coverage and intra-list diversity of one
  algorithm as MMR's ``diversity`` goes from 0 to 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from recommender.core.types import Context
from recommender.evaluation.metrics import (
    catalogue_coverage,
    intra_list_diversity,
    ndcg_at_k,
    recall_at_k,
)
from recommender.evaluation.setup import EvalSetup, Variant

#: Segments of the comparison table: users (light/heavy) and items (head/tail).
COMPARE_SEGMENTS: tuple[str, ...] = ("all", "light", "heavy", "head", "tail")
#: Bootstrap resamples of the users.
BOOTSTRAP = 1000
#: Share of training views the head anime hold.
HEAD_SHARE = 0.5


def head_items(setup: EvalSetup, share: float = HEAD_SHARE) -> np.ndarray:
    """Bool per item: among the most-watched anime holding ``share`` of the training views."""
    matrix = setup.engine.data.ratings
    views = np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.float64)
    order = np.argsort(-views, kind="stable")
    cumulative = np.cumsum(views[order])
    cut = int(np.searchsorted(cumulative, share * cumulative[-1])) + 1 if len(order) else 0
    head = np.zeros(len(views), dtype=bool)
    head[order[:cut]] = True
    return head


def paired_ratio_ci(values: np.ndarray, baseline: np.ndarray, *, n_boot: int = BOOTSTRAP,
                    random_state: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``mean(values) / mean(baseline)`` and its paired bootstrap ``level`` interval."""
    values, baseline = np.asarray(values, float), np.asarray(baseline, float)
    if len(values) == 0 or baseline.sum() == 0:
        return float("nan"), float("nan"), float("nan")
    ratio = values.mean() / baseline.mean()
    rng = np.random.default_rng(random_state)
    picks = rng.integers(0, len(values), size=(n_boot, len(values)))
    num, den = values[picks].mean(axis=1), baseline[picks].mean(axis=1)
    ratios = num[den > 0] / den[den > 0]
    tail = (1.0 - level) / 2.0
    return float(ratio), float(np.quantile(ratios, tail)), float(np.quantile(ratios, 1 - tail))


def segment_ndcg(setup: EvalSetup, lists: Sequence[np.ndarray],
                 head: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per segment: the users in it (positions) and their NDCG@k."""
    k = setup.spec.k
    out = {}
    every = np.arange(len(setup.user_ids))
    plain = np.array([ndcg_at_k(r, rel, k) for r, rel in zip(lists, setup.relevant)])
    out["all"] = (every, plain)
    out["light"] = (every[setup.light], plain[setup.light])
    out["heavy"] = (every[~setup.light], plain[~setup.light])
    for name, keep in (("head", head), ("tail", ~head)):
        users, values = [], []
        for u, (ranked, rel) in enumerate(zip(lists, setup.relevant)):
            chosen = rel[keep[rel]]
            if len(chosen):
                users.append(u)
                values.append(ndcg_at_k(ranked, chosen, k))
        out[name] = (np.asarray(users, np.int64), np.asarray(values))
    return out


def compare_to(setup: EvalSetup, lists: Mapping[Variant, list[np.ndarray]],
               baseline: str = "ease", *, n_boot: int = BOOTSTRAP) -> pd.DataFrame:
    """One row per (variant, segment): NDCG@k, its ratio to ``baseline`` and the 95% interval."""
    base = next((v for v in lists if v.algorithm == baseline and v.weight is None), None)
    if base is None:
        return pd.DataFrame(columns=["variant", "segment", "users", "ndcg", "ratio", "low",
                                     "high"])
    head = head_items(setup)
    reference = segment_ndcg(setup, lists[base], head)
    rows = []
    for v, per_user in lists.items():
        mine = segment_ndcg(setup, per_user, head)
        for segment in COMPARE_SEGMENTS:
            users, values = mine[segment]
            ratio, low, high = paired_ratio_ci(values, reference[segment][1], n_boot=n_boot,
                                               random_state=setup.spec.random_state)
            rows.append({"variant": v.label, "segment": segment, "users": len(users),
                         "ndcg": float(values.mean()) if len(values) else float("nan"),
                         "ratio": ratio, "low": low, "high": high})
    return pd.DataFrame(rows)


def diversity_lists(setup: EvalSetup, algorithm: str, values: Sequence[float], *,
                    weight: float | None = None, collaborative: str | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    ) -> dict[float, list[np.ndarray]]:
    """Per MMR ``diversity`` value, each user's top-k (what ``recommend`` returns).

    Lists come from the engine's own path (``Ranker.top_diverse``); scores are
    computed once per user and reused for every value. ``progress(done, total)``
    is called as users are scored.
    """
    engine, k = setup.engine, setup.spec.k
    ranker, context = engine.ranker, Context(engine.snapshot)
    collaborative = collaborative or engine.default_collaborative
    weight = engine.params.hybrid_weight if weight is None else weight
    lists: dict[float, list[np.ndarray]] = {float(d): [] for d in values}
    none = np.empty(0, np.int64)
    total = len(setup.user_ids)
    step = max(1, total // 100)
    for done, user_id in enumerate(setup.user_ids, start=1):
        profile = engine.profile(user_id=int(user_id))
        allowed = ranker.allowed(profile, none)
        parts = ranker.parts(profile, context, algorithm, collaborative)
        chain = ranker.chain(profile, context, algorithm, parts, weight=weight,
                             collaborative=collaborative)
        for d in lists:
            lists[d].append(ranker.top_diverse(chain, k, allowed, d)[0])
        if progress is not None and (done % step == 0 or done == total):
            progress(done, total)
    return lists


def diversity_curve(setup: EvalSetup, algorithm: str, values: Sequence[float] = (
        0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0), *, weight: float | None = None,
        collaborative: str | None = None) -> pd.DataFrame:
    """NDCG@k, recall@k, coverage and intra-list diversity as MMR's ``diversity`` grows.

    Each point is what ``recommend(..., diversity=d)`` returns (see
    :func:`diversity_lists`).
    """
    k = setup.spec.k
    lists = diversity_lists(setup, algorithm, values, weight=weight,
                            collaborative=collaborative)
    n_items = len(setup.engine.anime)
    rows = []
    for d, per_user in lists.items():
        rows.append({
            "diversity": d,
            "ndcg": float(np.mean([ndcg_at_k(r, rel, k) for r, rel in
                                   zip(per_user, setup.relevant)])),
            "recall": float(np.mean([recall_at_k(r, rel, k) for r, rel in
                                     zip(per_user, setup.relevant)])),
            "coverage": catalogue_coverage(per_user, n_items),
            "intra_list_diversity": float(np.nanmean([intra_list_diversity(r, setup.genres)
                                                      for r in per_user])),
        })
    return pd.DataFrame(rows)


def feature_importances(setup: EvalSetup) -> dict[str, float]:
    """The ranker's total gain per feature, largest first (empty without a ranker)."""
    ranker = setup.engine.models.get("ranker")
    importance = getattr(ranker, "feature_importance", None)
    return importance() if importance is not None else {}
