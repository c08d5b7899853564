"""Compiled inner loops of the neighbour search: posting-list accumulation and sparse re-rank.

Both loops are a few lines over CSR/CSC arrays, but in NumPy each needs a
Python-level gather (one slice per anime) and a ``bincount`` over every user,
which cost more than the exact scan they are meant to avoid. numba compiles
them once (``cache=True`` keeps the machine code beside this module, so later
processes load it instead of compiling) and releases the GIL while they run,
so queries on several threads do not serialise.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _accumulate(indptr, indices, data, items, weights, budget, n_rows):  # pragma: no cover
    # Rarest anime first: their posting lists are short and, by cosine on
    # normalised rows, carry the most weight per shared title.
    lengths = indptr[items + 1] - indptr[items]
    order = np.argsort(lengths, kind="mergesort")
    scores = np.zeros(n_rows, dtype=np.float32)
    touched = np.empty(min(budget, indices.shape[0]) + 1, dtype=np.int32)
    n_touched = 0
    read = 0
    for pos in range(order.shape[0]):
        j = order[pos]
        start, end = indptr[items[j]], indptr[items[j] + 1]
        if pos > 0 and read + (end - start) > budget:
            break
        if end - start > touched.shape[0] - n_touched:
            # Only the first anime may overrun the budget (it is always read).
            grown = np.empty(n_touched + (end - start) + 1, dtype=np.int32)
            grown[:n_touched] = touched[:n_touched]
            touched = grown
        w = weights[j]
        for p in range(start, end):
            u = indices[p]
            s = scores[u]
            # A zero score marks a user not met yet (a separate mask was measured
            # twice as slow). With mean-centred rows a sum can return to zero and
            # list a user twice; the caller drops repeats.
            if s == 0.0:
                touched[n_touched] = u
                n_touched += 1
            scores[u] = s + data[p] * w
        read += end - start
    users = touched[:n_touched]
    return users, scores[users]


def posting_scores(postings, items: np.ndarray, weights: np.ndarray,
                   budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Users met in the postings of ``items`` (rarest first, up to ``budget`` entries read)
    and their partial dot products with the query (``weights`` per item).

    ``postings`` is the CSC of the normalised similarity rows (users by anime).
    The rarest anime is always read, whatever the budget.
    """
    if len(items) == 0:
        return np.empty(0, np.int32), np.empty(0, np.float32)
    return _accumulate(postings.indptr, postings.indices, postings.data,
                       np.asarray(items, dtype=np.int64),
                       np.asarray(weights, dtype=np.float32), int(budget),
                       int(postings.shape[0]))


@njit(cache=True, nogil=True)
def _row_dots(indptr, indices, data, rows, dense):  # pragma: no cover
    out = np.zeros(rows.shape[0], dtype=np.float32)
    for i in range(rows.shape[0]):
        r = rows[i]
        acc = np.float32(0.0)
        for p in range(indptr[r], indptr[r + 1]):
            acc += data[p] * dense[indices[p]]
        out[i] = acc
    return out


def row_dots(matrix, rows: np.ndarray, dense: np.ndarray) -> np.ndarray:
    """``matrix[rows] @ dense`` (float32) without building the row subset."""
    return _row_dots(matrix.indptr, matrix.indices, matrix.data,
                     np.asarray(rows, dtype=np.int64), np.asarray(dense, dtype=np.float32))
