"""EASE ("ease"): Steck's closed-form item-item model (Embarrassingly Shallow Autoencoders, 2019).

The weights are ``B = I - P / diag(P)`` (column-wise) with ``P = (XᵀX + λI)⁻¹``,
which makes ``diag(B) = 0``: an anime never recommends itself. A user is scored
from their list alone, ``scores = x_u @ B``, so a what-if user needs no
retraining.

Memory is bounded by one dense float32 item × item block: only anime with at
least ``min_support`` watchers take part, the Gram matrix is accumulated by a
compiled loop over each user's pairs straight into that block, and LAPACK's
``potrf``/``potri`` invert it in place. At 11k anime that is 0.48 GB for the
block (see README for the measured peak and time).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Self

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.linalg import lapack

from recommender.core.types import Context, Explanation, Scores, TrainingData, UserProfile
from recommender.errors import ConfigurationError
from recommender.models.reasons import because_text

#: How raw ratings become EASE inputs (see :func:`preference_values`).
WEIGHTINGS = ("rating", "binary")

def preference_values(raw: np.ndarray, *, weighting: str, watched_value: float,
                      dislike_below: float = 0.0) -> np.ndarray:
    """Input values of EASE for raw ratings (-1 or 1..10).

    ``"binary"``: every watched anime is 1. ``"rating"``: rating/10, and
    ``watched_value`` for -1 ("watched, not rated"). A rating below
    ``dislike_below`` is a dislike, ``-(dislike_below - rating) / 10``: having
    watched it says the user tried it, the rating says it was not to their taste.
    """
    raw = np.asarray(raw, dtype=np.float32)
    if weighting == "binary":
        values = np.ones_like(raw)
    elif weighting == "rating":
        values = np.where(raw < 0, watched_value, raw / 10.0).astype(np.float32)
    else:
        raise ValueError(f"unknown EASE weighting {weighting!r}; use 'binary' or 'rating'")
    disliked = (raw > 0) & (raw < dislike_below)
    return np.where(disliked, -(dislike_below - raw) / 10.0, values).astype(np.float32)


@njit(cache=True, nogil=True)
def _gram_upper(indptr, indices, data, lo, hi, gram):  # pragma: no cover
    # Adds x_ui * x_uj into gram[i, j] for every user u and i <= j with lo <= i < hi.
    # Rows have sorted, unique indices, so j >= i and only the upper triangle is written.
    for u in range(indptr.shape[0] - 1):
        start, end = indptr[u], indptr[u + 1]
        a = start + np.searchsorted(indices[start:end], lo)
        while a < end and indices[a] < hi:
            row = gram[indices[a]]
            va = data[a]
            for b in range(a, end):
                row[indices[b]] += va * data[b]
            a += 1


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def gram_matrix(x: sp.csr_matrix, threads: int | None = None) -> np.ndarray:
    """Dense float32 ``XᵀX`` (C order), accumulated straight into one dense block.

    A sparse product would hold the nearly dense item × item result in sparse
    form first (several times the dense size, and single-threaded: 42 s of a
    98 s EASE fit at the 2016 shape). The compiled loop adds each user's pairs
    in place instead. ``threads`` threads (default: the CPUs this process may
    use) each own a band of rows, split so that every band has about the same
    number of pairs to add, so no two threads write the same memory.
    """
    x = sp.csr_matrix(x, dtype=np.float32, copy=True)
    x.sum_duplicates()  # sorted, unique indices per row (the loop relies on both)
    n_items = x.shape[1]
    gram = np.zeros((n_items, n_items), dtype=np.float32)
    if x.nnz == 0:
        return gram
    indptr = x.indptr.astype(np.int64)
    indices = x.indices.astype(np.int64)
    # Pairs each row i of the Gram receives: for an entry, the entries after it in its row.
    row_end = np.repeat(indptr[1:], np.diff(indptr))
    work = np.cumsum(np.bincount(indices, weights=row_end - np.arange(x.nnz),
                                 minlength=n_items))
    threads = max(1, min(threads or _available_cpus(), n_items))
    cuts = np.searchsorted(work, work[-1] * np.arange(1, threads) / threads)
    bounds = np.unique(np.concatenate([[0], cuts, [n_items]]))
    bands = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
    if len(bands) == 1:
        _gram_upper(indptr, indices, x.data, 0, n_items, gram)
    else:
        with ThreadPoolExecutor(len(bands)) as pool:  # the loop releases the GIL
            list(pool.map(lambda band: _gram_upper(indptr, indices, x.data, *band, gram),
                          bands))
    _mirror_upper(gram)
    return gram


def ease_weights(gram: np.ndarray, lam: float) -> np.ndarray:
    """EASE weights from a dense symmetric Gram matrix, computed in place (gram is consumed).

    Returns ``B`` (the same memory as ``gram``) with ``B[i, j]`` the weight of
    watched anime ``i`` in the score of anime ``j`` and a zero diagonal.
    """
    n = gram.shape[0]
    if gram.dtype != np.float32 or not gram.flags.c_contiguous:
        raise ValueError("the Gram matrix must be C-contiguous float32")
    gram[np.diag_indices(n)] += np.float32(lam)
    # LAPACK works in Fortran order; gram.T is that order without a copy, and the
    # matrix is symmetric, so its lower triangle is gram's upper one.
    fortran = gram.T
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (fortran,))
    factor, info = potrf(fortran, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"XᵀX + λI is not positive definite (potrf info {info})")
    inverse, info = potri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverting XᵀX + λI failed (potri info {info})")
    if not np.shares_memory(inverse, gram):  # cannot happen for F-ordered float32 input
        gram[...] = inverse.T
    _mirror_upper(gram)
    diag = gram.diagonal().copy()
    gram /= -diag[None, :]
    gram[np.diag_indices(n)] = 0.0
    return gram


def _mirror_upper(a: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle of square ``a`` onto its lower one, in blocks (no n² temporary)."""
    n = a.shape[0]
    for start in range(0, n, block):
        end = min(n, start + block)
        a[start:end, :start] = a[:start, start:end].T
        square = a[start:end, start:end]
        square[...] = np.triu(square) + np.triu(square, 1).T


@dataclass(frozen=True)
class EASEConfig:
    """EASE hyper-parameters, tuned on the validation split (README, "Learned models")."""

    #: The L2 penalty λ of Steck's closed form.
    l2: float = 100.0
    #: Anime with fewer watchers are left out (their weights would be noise).
    min_support: int = 5
    #: Input values: "rating" (rating / 10) or "binary" (1 for every watched anime).
    weighting: str = "rating"
    #: Input value of a -1 ("watched, not rated") under "rating".
    watched_value: float = 0.5
    #: Ratings below this are negative inputs (0: none).
    dislike_below: float = 5.0

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ConfigurationError(f"EASE weighting {self.weighting!r} is not one of "
                                     f"{', '.join(WEIGHTINGS)}")


class EASE:
    """An "ease" scorer: ``x_u @ B`` over anime with at least ``min_support`` watchers.

    Scores are clipped at 0 (0 = no evidence). Anime below the support cut
    never score, and count for nothing in a user's list.
    """

    name = "ease"

    def __init__(self, config: EASEConfig | None = None, **overrides):
        self.config = replace(config or EASEConfig(), **overrides)

    def _values(self, raw: np.ndarray) -> np.ndarray:
        c = self.config
        return preference_values(raw, weighting=c.weighting, watched_value=c.watched_value,
                                 dislike_below=c.dislike_below)

    def fit(self, data: TrainingData) -> Self:
        """Compute ``B`` over the supported anime of ``data.ratings``; returns self."""
        ratings = sp.csr_matrix(data.ratings)
        support = np.bincount(ratings.indices, minlength=ratings.shape[1])
        items = np.flatnonzero(support >= max(1, self.config.min_support))
        x = sp.csr_matrix((self._values(ratings.data), ratings.indices, ratings.indptr),
                          shape=ratings.shape)[:, items]
        weights = ease_weights(gram_matrix(x), self.config.l2) if len(items) else np.zeros((0, 0),
                                                                                     np.float32)
        self._adopt(items, weights, data)
        return self

    def _adopt(self, items: np.ndarray, weights: np.ndarray, data: TrainingData) -> None:
        n_items = data.ratings.shape[1]
        self.items_ = items.astype(np.int64)
        self.weights_ = weights
        self.position_ = np.full(n_items, -1, dtype=np.int64)
        self.position_[self.items_] = np.arange(len(self.items_))
        self.names_ = data.anime["name"].to_numpy()
        self.n_items_ = n_items

    # -- persistence ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Learned arrays and hyper-parameters, enough for :meth:`from_state`."""
        return {"items": self.items_, "weights": self.weights_}

    @classmethod
    def from_state(cls, state: dict, data: TrainingData,
                   config: EASEConfig | None = None) -> EASE:
        """A fitted scorer from :meth:`state_dict` output, without refitting."""
        scorer = cls(config)
        items = np.asarray(state["items"], dtype=np.int64)
        weights = np.ascontiguousarray(state["weights"], dtype=np.float32)
        if weights.shape != (len(items), len(items)) or (
                len(items) and items.max() >= data.ratings.shape[1]):
            raise ValueError("EASE weights do not match the catalogue")
        scorer._adopt(items, weights, data)
        return scorer

    # -- scoring ----------------------------------------------------------------------
    def _inputs(self, profile: UserProfile) -> tuple[np.ndarray, np.ndarray]:
        """The user's supported anime (positions in ``B``) and their input values."""
        pos = self.position_[profile.item_idx]
        keep = pos >= 0
        return pos[keep], self._values(profile.ratings[keep])

    def score(self, profile: UserProfile, context: Context | None = None) -> Scores:
        """``x_u @ B`` over the supported anime, clipped at 0; the rest score 0."""
        values = np.zeros(self.n_items_, dtype=np.float32)
        pos, x = self._inputs(profile)
        if len(pos):
            values[self.items_] = np.clip(x @ self.weights_[pos], 0, None)
        return Scores(values, self.name)

    def similar_items(self, item_idx: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` anime that watching ``item_idx`` raises most (row of ``B``), best first."""
        pos = self.position_[item_idx]
        if pos < 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        row = self.weights_[pos]
        keep = np.flatnonzero(row > 0)
        top = keep[np.lexsort((keep, -row[keep]))][:n]
        return self.items_[top], row[top].astype(np.float32)

    def explain(self, profile: UserProfile, item_idx: np.ndarray, scores: Scores) -> Explanation:
        """Name the listed anime with the largest weight × input terms for each item."""
        pos, x = self._inputs(profile)
        reasons, because, shares = [], [], []
        for item in item_idx:
            target = self.position_[item]
            if target < 0 or len(pos) == 0:
                because.append([])
                shares.append([])
                reasons.append("fits your overall taste")
                continue
            terms = x * self.weights_[pos, target]
            order = [j for j in np.argsort(-terms, kind="stable")[:3] if terms[j] > 0]
            top = [int(self.items_[pos[j]]) for j in order]
            because.append(top)
            shares.append([round(float(terms[j]), 4) for j in order])
            reasons.append(because_text(self.names_, top[:2]))
        return Explanation(reasons, {"because_items": because, "contributions": shares})

