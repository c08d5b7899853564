"""Ranking metrics over lists of catalogue positions (pure functions over arrays).

Binary relevance: a held-out anime is relevant or not. Every ``*_at_k`` takes a
ranked list (best first) and the relevant items, and averages nothing: the
protocol averages over users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recommender.models.content import genre_sets


def _hits(ranked, relevant, k: int) -> np.ndarray:
    """Boolean per position of the top ``k``: is that item relevant?"""
    top = np.asarray(ranked)[:k]
    return np.isin(top, np.asarray(list(relevant) if isinstance(relevant, (set, frozenset))
                                   else relevant))


def precision_at_k(ranked, relevant, k: int) -> float:
    """Relevant items among the top ``k``, divided by ``k`` (a short list is not excused)."""
    return float(_hits(ranked, relevant, k).sum()) / k


def recall_at_k(ranked, relevant, k: int) -> float:
    """Relevant items in the top ``k`` over all relevant items; 0 when none are relevant."""
    n_relevant = len(relevant)
    return float(_hits(ranked, relevant, k).sum()) / n_relevant if n_relevant else 0.0


def hit_rate_at_k(ranked, relevant, k: int) -> float:
    """1.0 when at least one relevant item is in the top ``k``, else 0.0."""
    return float(_hits(ranked, relevant, k).any())


def ndcg_at_k(ranked, relevant, k: int) -> float:
    """Binary-gain NDCG: sum of 1/log2(rank+1) over hits, over the ideal for min(k, |relevant|)."""
    hits = _hits(ranked, relevant, k)
    ideal = min(k, len(relevant))
    if ideal == 0:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    return float((hits * discounts[:len(hits)]).sum() / discounts[:ideal].sum())


def average_precision_at_k(ranked, relevant, k: int) -> float:
    """AP@k: mean of precision@i at each hit rank i, over min(k, |relevant|)."""
    hits = _hits(ranked, relevant, k)
    ideal = min(k, len(relevant))
    if ideal == 0:
        return 0.0
    precisions = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precisions * hits).sum() / ideal)


def catalogue_coverage(lists: Sequence, n_items: int) -> float:
    """Share of the ``n_items`` catalogue that appears in at least one list."""
    if n_items <= 0:
        return 0.0
    shown = np.unique(np.concatenate([np.asarray(x, dtype=np.int64) for x in lists])) \
        if len(lists) else np.empty(0)
    return len(shown) / n_items


def self_information(item_counts: np.ndarray, n_users: int) -> np.ndarray:
    """-log2(share of users who have the item) per item, in bits.

    An item nobody has counts as had by one user, so its value stays finite
    (the rarest possible, log2(n_users)).
    """
    counts = np.maximum(np.asarray(item_counts, dtype=np.float64), 1.0)
    return -np.log2(counts / max(n_users, 1))


def novelty(ranked, information: np.ndarray) -> float:
    """Mean self-information (bits, from training popularity) of a list's items; 0 if empty."""
    ranked = np.asarray(ranked, dtype=np.int64)
    return float(information[ranked].mean()) if len(ranked) else 0.0


def genre_matrix(anime: pd.DataFrame) -> np.ndarray:
    """Items x genres 0/1 matrix (float64) in catalogue order."""
    sets = genre_sets(anime)
    names = sorted(set().union(*sets)) if sets else []
    column = {g: i for i, g in enumerate(names)}
    out = np.zeros((len(sets), len(names)), dtype=np.float64)
    for row, genres in enumerate(sets):
        out[row, [column[g] for g in genres]] = 1.0
    return out


def intra_list_diversity(ranked, genres: np.ndarray) -> float:
    """Mean pairwise Jaccard distance between the genre sets of a list's items.

    ``genres`` is items x genres 0/1 (see :func:`genre_matrix`). Two items with
    no genres at all count as identical (distance 0). NaN for fewer than 2 items.
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    if len(ranked) < 2:
        return float("nan")
    g = genres[ranked]
    inter = g @ g.T
    sizes = g.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    distance = np.where(union > 0, 1.0 - inter / np.where(union > 0, union, 1.0), 0.0)
    upper = np.triu_indices(len(ranked), k=1)
    return float(distance[upper].mean())


#: Two similarities this close (relative) are a tie: float32 cosines of one pair of
#: users computed over different row subsets may differ in the last bits.
TIE_RTOL = 1e-5


def tie_aware_recall(found_ids, found_similarity, exact_ids, exact_similarity,
                     rtol: float = TIE_RTOL) -> float:
    """Neighbour recall@k that counts ties at the cut-off as hits.

    ``exact_*`` is the exact top-k (any order); ``found_*`` what a faster search
    returned, with each found user's *exact* similarity. A found user in the
    exact top-k is a hit; so is one outside it whose similarity equals the k-th
    exact similarity (within ``rtol``), since the exact top-k could as well have
    held them: which of several equally similar users is "k-th" is an arbitrary
    tie-break. Hits are capped at ``len(exact_ids)``; 1.0 for an empty reference.
    """
    exact_ids = np.asarray(exact_ids, dtype=np.int64)
    if len(exact_ids) == 0:
        return 1.0
    found_ids = np.asarray(found_ids, dtype=np.int64)
    inside = len(np.intersect1d(found_ids, exact_ids))
    tied = len(np.unique(tied_at_cutoff(found_ids, found_similarity, exact_ids,
                                        exact_similarity, rtol)))
    return min(inside + tied, len(exact_ids)) / len(exact_ids)


def tied_at_cutoff(found_ids, found_similarity, exact_ids, exact_similarity,
                   rtol: float = TIE_RTOL) -> np.ndarray:
    """The ids outside the exact top-k that :func:`tie_aware_recall` counts as hits."""
    exact_ids = np.asarray(exact_ids, dtype=np.int64)
    found_ids = np.asarray(found_ids, dtype=np.int64)
    if len(exact_ids) == 0 or len(found_ids) == 0:
        return np.empty(0, np.int64)
    kth = float(np.min(np.asarray(exact_similarity, dtype=np.float64)))
    sims = np.asarray(found_similarity, dtype=np.float64)
    tied = ~np.isin(found_ids, exact_ids) & (sims >= kth - rtol * max(abs(kth), 1e-12))
    return np.sort(found_ids[tied])
