"""Why two users are neighbours, in terms an analyst can check (pure functions over arrays).

Cosine similarity says *how* similar two users are, not *why*. These functions
name the shared titles that carry the evidence, flag neighbours whose score
rests on almost no overlap, and pick the titles that tell a group of users
apart. Ratings follow the matrix convention: 1..10, -1 = watched, not rated,
0 / absent = not watched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: A neighbour sharing fewer watched titles than this is flagged: a cosine over
#: one or two titles can be high by chance (two identical ratings give 1.0).
MIN_SHARED = 4
#: Agreement when either user only watched a title (-1): shared taste, unknown opinion.
WATCHED_AGREEMENT = 0.5


@dataclass(frozen=True, eq=False)
class SharedTitles:
    """The titles a neighbour shares with the user, strongest evidence first."""

    item_idx: np.ndarray   # int64 catalogue positions
    weight: np.ndarray     # float64: rarity (bits) x agreement (0..1)
    mine: np.ndarray       # float32: the user's rating of each (-1 = watched)
    theirs: np.ndarray     # float32: the neighbour's rating of each


def rarity(watchers: np.ndarray, n_users: int) -> np.ndarray:
    """Self-information in bits, -log2(share of users who watched), per item.

    An item nobody watched counts as watched by one user, so it stays finite.
    """
    counts = np.maximum(np.asarray(watchers, dtype=np.float64), 1.0)
    return np.maximum(-np.log2(counts / max(int(n_users), 1)), 0.0)


def agreement(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """1 for equal ratings down to 0 for 1 against 10; :data:`WATCHED_AGREEMENT` for a -1."""
    mine, theirs = np.asarray(mine, np.float64), np.asarray(theirs, np.float64)
    rated = (mine > 0) & (theirs > 0)
    return np.where(rated, 1.0 - np.abs(mine - theirs) / 9.0, WATCHED_AGREEMENT)


def why_similar(mine: sp.csr_matrix, theirs: sp.csr_matrix, watchers: np.ndarray,
                n_users: int, top: int = 3) -> list[SharedTitles]:
    """For each row of ``theirs``, the ``top`` shared titles by rarity x agreement.

    ``mine`` is the user's rating row (1 x items), ``theirs`` the neighbours'
    rows; ``watchers`` counts the users who watched each item. A title everyone
    watched carries almost no weight however alike the two rated it; a rare
    title both rated 9 carries the most. Ties go to the lower catalogue position.
    """
    mine = sp.csr_matrix(mine)
    dense = np.zeros(mine.shape[1], dtype=np.float32)
    dense[mine.indices] = mine.data
    info = rarity(watchers, n_users)
    theirs = sp.csr_matrix(theirs)
    out = []
    for row in range(theirs.shape[0]):
        start, end = theirs.indptr[row], theirs.indptr[row + 1]
        items, values = theirs.indices[start:end], theirs.data[start:end]
        shared = (dense[items] != 0) & (values != 0)
        items, values = items[shared].astype(np.int64), values[shared]
        weight = info[items] * agreement(dense[items], values)
        order = np.lexsort((items, -weight))[:top]
        out.append(SharedTitles(items[order], weight[order], dense[items[order]],
                                values[order].astype(np.float32)))
    return out


def thin_overlap(shared: np.ndarray, min_shared: int = MIN_SHARED) -> np.ndarray:
    """True where a neighbour shares fewer than ``min_shared`` watched titles with the user."""
    return np.asarray(shared) < min_shared


def liked_genre_shares(liked_items: np.ndarray, genres: np.ndarray) -> np.ndarray:
    """Share of the likes (item positions, repeats counted) falling in each genre.

    ``genres`` is items x genres 0/1; an item with two genres counts in both,
    so shares can sum past 1. Zeros when there are no likes.
    """
    liked_items = np.asarray(liked_items, dtype=np.int64)
    if len(liked_items) == 0:
        return np.zeros(genres.shape[1])
    counts = np.bincount(liked_items, minlength=genres.shape[0]).astype(np.float64)
    return (counts @ genres) / len(liked_items)


def discriminative_columns(values: np.ndarray, max_columns: int) -> np.ndarray:
    """Columns of a users x titles grid that best tell its rows (the neighbours) apart.

    ``values`` holds ratings (-1 = watched) and NaN where a user did not watch;
    row 0 is the chosen user, who watched every column. A title every
    neighbour watched and rated alike (the popular favourites) says nothing
    about who differs from whom; one that splits the neighbours into watchers
    and non-watchers, or whose ratings spread, does. Score: 4p(1-p) for the
    share p of neighbours who watched it (1 at an even split), plus the spread
    of the explicit ratings over 4.5 (1 for a 1-versus-10 split), times the
    share who watched, so a title only one neighbour saw ranks low. Most
    informative first; ties to the lower column.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] == 0:
        return np.empty(0, np.int64)
    others = values[1:] if len(values) > 1 else values
    watched = ~np.isnan(others)
    p = watched.mean(axis=0)
    rated = watched & (others > 0)
    n = rated.sum(axis=0)
    x = np.where(rated, others, 0.0)
    mean = x.sum(axis=0) / np.maximum(n, 1)
    var = (np.where(rated, (others - mean) ** 2, 0.0)).sum(axis=0) / np.maximum(n, 1)
    spread = np.sqrt(var) / 4.5
    score = (4 * p * (1 - p) + spread) * p
    columns = np.arange(values.shape[1])
    order = np.lexsort((columns, -score))
    return order[:max_columns].astype(np.int64)
