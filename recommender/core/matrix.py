"""Id maps and sparse users x anime matrices (pure functions over arrays).

Conventions: ``anime_id``/``user_id`` are external ids, ``item_idx``/``user_idx``
are matrix positions. No function here ever makes a full matrix dense.

What -1 ("watched, not rated") means
------------------------------------
The raw rating matrix keeps -1 as an explicit stored value, so a watched anime
is never recommended back. For *similarity* a -1 says only that the user
watched the title, not whether they liked it, so it carries no taste signal:
it contributes zero to the similarity rows (see
:func:`similarity_rows`). A user whose rows are all -1 therefore has a zero
similarity vector and no neighbours; the engine falls back to content and then
popularity for them. In the collaborative *aggregation* a neighbour's -1 counts
as a weak "watched" vote (``watched_weight``), never as a like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass(frozen=True, eq=False)
class IdIndex:
    """Sorted unique external ids; an id's position is its row/column number."""

    ids: np.ndarray  # int64, sorted, unique

    @classmethod
    def from_ids(cls, ids) -> IdIndex:
        return cls(sorted_unique(np.asarray(ids, dtype=np.int64)))

    def __len__(self) -> int:
        return len(self.ids)

    def numbers(self, ids) -> np.ndarray:
        """Positions of ``ids`` (int64), -1 where unknown."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self.ids) == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.ids, ids), 0, len(self.ids) - 1)
        return np.where(self.ids[pos] == ids, pos, -1).astype(np.int64)

    def number(self, one_id: int) -> int:
        """Position of one id, -1 when unknown."""
        return int(self.numbers(np.array([one_id]))[0])

    def appended(self, new_ids) -> IdIndex:
        """A new index with ``new_ids`` (all larger than the current maximum) at the end."""
        new_ids = np.asarray(new_ids, dtype=np.int64)
        if len(self.ids) and len(new_ids) and new_ids.min() <= self.ids[-1]:
            raise ValueError("appended ids must be larger than every existing id")
        return IdIndex(np.concatenate([self.ids, new_ids]))


def build_rating_matrix(
    user_idx: np.ndarray, item_idx: np.ndarray, ratings: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Users x anime CSR of raw ratings (float32): -1 or 1..10; absent pairs are not stored.

    Rows are built directly from coordinates; duplicate pairs keep the last value
    rather than being summed, since a re-rated title replaces the old rating.
    """
    ratings = np.asarray(ratings, dtype=np.float32)
    # One int64 key per pair; (row, col) order is key order.
    key = np.asarray(user_idx, dtype=np.int64) * shape[1]
    key += np.asarray(item_idx, dtype=np.int64)
    if len(key) > 1 and not (key[1:] > key[:-1]).all():
        # Unsorted or repeated pairs. A stable sort keeps the input order among
        # equal keys, so keeping the last of each gives "last write wins".
        order = np.argsort(key, kind="stable")
        key, ratings = key[order], ratings[order]
        del order
        last = np.ones(len(key), dtype=bool)
        last[:-1] = key[1:] != key[:-1]
        key, ratings = key[last], ratings[last]
    # Rating files come sorted by user then anime (the Kaggle file is), and then
    # no sort is needed at all.
    u = key // shape[1] if shape[1] else key
    i = key - u * shape[1]
    del key
    r = ratings
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=shape[0]), out=indptr[1:])
    index_dtype = np.int32 if max(shape[1], len(i)) < 2**31 else np.int64
    return sp.csr_matrix(
        (r, i.astype(index_dtype), indptr.astype(index_dtype)), shape=shape
    )


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted unique values of an integer array.

    Sorting is several times faster here than ``np.unique``, whose hash-based
    path (numpy >= 2.3) is slow on millions of values.
    """
    values = np.sort(values)
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def matrix_from_frame(
    ratings: pd.DataFrame, users: IdIndex, items: IdIndex
) -> sp.csr_matrix:
    """CSR of ``ratings`` (``user_id``, ``anime_id``, ``rating``); unknown ids are dropped."""
    rows = users.numbers(ratings["user_id"].to_numpy())
    cols = items.numbers(ratings["anime_id"].to_numpy())
    keep = (rows >= 0) & (cols >= 0)
    return build_rating_matrix(
        rows[keep], cols[keep], ratings["rating"].to_numpy()[keep], (len(users), len(items))
    )


def global_mean(matrix: sp.csr_matrix) -> float:
    """Mean of the explicit (1..10) ratings in ``matrix``; 7.5 when there are none."""
    rated = matrix.data[matrix.data > 0]
    return float(rated.mean()) if len(rated) else 7.5


def similarity_rows(
    matrix: sp.csr_matrix, *, mean: float, damping: float = 5.0, centre: bool = True
) -> sp.csr_matrix:
    """L2-normalised rating rows for cosine similarity (float32 CSR).

    With ``centre``, each explicit rating becomes ``rating - c_u``, where ``c_u``
    is the user's mean shrunk towards the global ``mean`` by ``damping``
    pseudo-ratings. The shrinkage matters for short lists: a user who gives
    every title a 10 would otherwise centre to a zero vector. Without
    ``centre`` the raw 1..10 ratings are used, so two users who watched the same
    titles are similar even when they graded them differently (better for
    top-n ranking on the bundled data, see README "Evaluation").
    -1 rows carry no taste and become 0 either way. Rows that end up all zero
    stay zero (their cosine with anything is 0).
    """
    matrix = matrix.tocsr()
    data = matrix.data.astype(np.float32)
    rated = data > 0
    n_rows = matrix.shape[0]
    row_of = np.repeat(np.arange(n_rows), np.diff(matrix.indptr))
    sums = np.bincount(row_of, weights=np.where(rated, data, 0), minlength=n_rows)
    counts = np.bincount(row_of, weights=rated, minlength=n_rows)
    if centre:
        centres = (sums + damping * mean) / (counts + damping)
    else:
        centres = np.zeros(n_rows)
    values = np.where(rated, data - centres[row_of].astype(np.float32), 0).astype(np.float32)
    norms = np.sqrt(np.bincount(row_of, weights=values.astype(np.float64) ** 2, minlength=n_rows))
    safe = np.where(norms > 0, norms, 1.0)
    values = (values / safe[row_of]).astype(np.float32)
    out = sp.csr_matrix((values, matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape)
    out.eliminate_zeros()
    return out


def append_rows(matrix: sp.csr_matrix, rows: sp.csr_matrix) -> sp.csr_matrix:
    """A new CSR with ``rows`` below ``matrix`` (same columns); the inputs are untouched."""
    if rows.shape[1] != matrix.shape[1]:
        raise ValueError("rows must have as many columns as the matrix")
    return sp.vstack([matrix, rows], format="csr", dtype=matrix.dtype)


def matrix_nbytes(matrix: sp.csr_matrix) -> int:
    """Bytes held by a CSR's three arrays."""
    return int(matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes)
