"""Features of (user, candidate anime) pairs for the learned ranker, known at recommendation time.

Pure functions over arrays. Per candidate: each stage-1 model's score (over the
user's best score of that model) and rank, NaN when the model did not propose
it; how many models proposed it; the user-user neighbours' support and mean
rating; the item's popularity, like-rate, mean rating, share of -1, community
score, members, type and episodes; the user's activity, mean rating and share
of -1; the genre fit; and how many titles of its franchise the user rated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recommender.core.types import LIKE_RATING, Scores, TrainingData, UserProfile
from recommender.models.content import genre_sets
from recommender.models.franchise import franchise_groups

#: The stage-1 models, in feature order.
MODELS: tuple[str, ...] = ("ease", "mf", "user-user", "content")
_ITEM = ("popularity", "like_rate", "mean_rating", "watched_share", "community", "members",
         "type", "episodes")
_USER = ("user_activity", "user_mean", "user_watched_share", "user_likes")
FEATURES: tuple[str, ...] = (
    *(f"{m}_{kind}" for m in MODELS for kind in ("score", "rank")),
    "proposers", "support", "support_share", "neighbour_mean",
    *_ITEM, *_USER, "genre_fit", "franchise_seen", "franchise_mean",
)
#: Index of each feature's column.
COLUMN = {name: j for j, name in enumerate(FEATURES)}
#: Features LightGBM treats as categories.
CATEGORICAL = ("type",)
TYPES = ("TV", "Movie", "OVA", "Special", "ONA", "Music")


@dataclass(frozen=True, eq=False)
class ItemTable:
    """What the ranker knows of every catalogue item (fitted on training ratings only)."""

    values: np.ndarray        # items x len(_ITEM), float32
    genres: sp.csr_matrix     # items x genres, rows L2-normalised
    genre_names: tuple[str, ...]
    franchise: np.ndarray     # int64 per item, -1 = none
    watchers: np.ndarray      # int64 per item

    def column(self, name: str) -> np.ndarray:
        return self.values[:, _ITEM.index(name)]


def _genre_matrix(anime: pd.DataFrame) -> tuple[sp.csr_matrix, tuple[str, ...]]:
    sets = genre_sets(anime)
    names = tuple(sorted(set().union(*sets))) if sets else ()
    column = {g: j for j, g in enumerate(names)}
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.array([column[g] for s in sets for g in s], dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)),
                           shape=(len(sets), max(len(names), 1)))
    return normalize(matrix).astype(np.float32).tocsr(), names


def item_table(data: TrainingData) -> ItemTable:
    """Per-item statistics of ``data.ratings`` and the catalogue."""
    matrix, anime = data.ratings, data.anime
    n_items = matrix.shape[1]
    idx, raw = matrix.indices, matrix.data
    watchers = np.bincount(idx, minlength=n_items).astype(np.float64)
    explicit = np.bincount(idx[raw > 0], minlength=n_items).astype(np.float64)
    likes = np.bincount(idx[raw >= LIKE_RATING], minlength=n_items)
    total = np.bincount(idx[raw > 0], weights=raw[raw > 0], minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        like_rate = np.where(explicit > 0, likes / explicit, np.nan)
        mean = np.where(explicit > 0, total / explicit, np.nan)
        watched_share = np.where(watchers > 0, (watchers - explicit) / watchers, np.nan)

    def numeric(name: str) -> np.ndarray:
        if name not in anime:
            return np.full(n_items, np.nan)
        values = pd.to_numeric(anime[name], errors="coerce").to_numpy(np.float64)
        return np.where(values > 0, values, np.nan)

    kinds = anime["type"].astype(str).to_numpy() if "type" in anime else np.full(n_items, "")
    type_code = np.array([TYPES.index(t) if t in TYPES else len(TYPES) for t in kinds],
                         dtype=np.float64)
    values = np.column_stack([np.log1p(watchers), like_rate, mean, watched_share,
                              numeric("rating"), np.log1p(np.nan_to_num(numeric("members"))),
                              type_code, numeric("episodes")]).astype(np.float32)
    genres, names = _genre_matrix(anime)
    return ItemTable(values, genres, names, franchise_groups(anime), watchers.astype(np.int64))


def candidates(scores: Mapping[str, np.ndarray], allowed: np.ndarray,
               per_model: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The union of each model's top ``per_model[name]`` allowed items with a score above 0.

    Returns the candidates (int64, ascending) and their rank in each model's list
    (candidates x len(MODELS), float32, 1 = best, NaN = not proposed by it).
    """
    tops = {}
    for name in MODELS:
        values = scores[name]
        pool = np.flatnonzero(allowed & (values > 0))
        want = min(per_model[name], len(pool))
        if want:
            best = pool[np.argpartition(-values[pool], want - 1)[:want]]
            tops[name] = best[np.lexsort((best, -values[best]))]
        else:
            tops[name] = np.empty(0, np.int64)
    items = np.unique(np.concatenate(list(tops.values()))).astype(np.int64)
    ranks = np.full((len(items), len(MODELS)), np.nan, dtype=np.float32)
    for j, name in enumerate(MODELS):
        where = np.searchsorted(items, tops[name])
        ranks[where, j] = np.arange(1, len(tops[name]) + 1)
    return items, ranks


def feature_matrix(profile: UserProfile, items: np.ndarray, ranks: np.ndarray,
                   parts: Mapping[str, Scores], table: ItemTable,
                   n_neighbours: int) -> np.ndarray:
    """Candidates x FEATURES (float32; NaN = missing) for one user."""
    n = len(items)
    out = np.full((n, len(FEATURES)), np.nan, dtype=np.float32)
    for j, name in enumerate(MODELS):
        values = parts[name].values
        top = float(values.max(initial=0.0))
        out[:, COLUMN[f"{name}_score"]] = values[items] / top if top > 0 else 0.0
        out[:, COLUMN[f"{name}_rank"]] = ranks[:, j]
    out[:, COLUMN["proposers"]] = np.isfinite(ranks).sum(axis=1)
    details = parts["user-user"].details
    if "support" in details:
        support = details["support"][items].astype(np.float32)
        out[:, COLUMN["support"]] = support
        out[:, COLUMN["support_share"]] = support / max(n_neighbours, 1)
        out[:, COLUMN["neighbour_mean"]] = np.where(support > 0,
                                                    details["neighbour_mean"][items], np.nan)
    else:
        out[:, COLUMN["support"]] = 0.0
        out[:, COLUMN["support_share"]] = 0.0
    out[:, COLUMN[_ITEM[0]]:COLUMN[_ITEM[-1]] + 1] = table.values[items]
    out[:, COLUMN[_USER[0]]:COLUMN[_USER[-1]] + 1] = user_features(profile)
    out[:, COLUMN["genre_fit"]] = genre_fit(profile, items, table)
    seen, mean = franchise_features(profile, items, table.franchise)
    out[:, COLUMN["franchise_seen"]] = seen
    out[:, COLUMN["franchise_mean"]] = mean
    return out


def user_features(profile: UserProfile) -> np.ndarray:
    """Activity (log of titles watched), mean explicit rating, share of -1, likes."""
    r = profile.ratings
    explicit = r[r > 0]
    return np.array([np.log1p(len(r)), explicit.mean() if len(explicit) else np.nan,
                     (r < 0).mean() if len(r) else np.nan,
                     float((r >= LIKE_RATING).sum())], dtype=np.float32)


def taste_vector(profile: UserProfile, table: ItemTable) -> np.ndarray:
    """The user's genre profile: the liked titles' genre rows summed, L2-normalised."""
    liked = profile.ratings >= LIKE_RATING
    chosen = profile.item_idx[liked] if liked.any() else profile.item_idx
    if len(chosen) == 0:
        return np.zeros(table.genres.shape[1], np.float32)
    taste = np.asarray(table.genres[chosen].sum(axis=0)).ravel()
    norm = float(np.linalg.norm(taste))
    return (taste / norm).astype(np.float32) if norm > 0 else taste.astype(np.float32)


def genre_fit(profile: UserProfile, items: np.ndarray, table: ItemTable) -> np.ndarray:
    """Cosine of each item's genres with the user's genre profile."""
    return np.asarray(table.genres[items] @ taste_vector(profile, table)).ravel()


def franchise_features(profile: UserProfile, items: np.ndarray,
                       franchise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per item: titles of its franchise the user watched, and their mean explicit rating."""
    seen = np.zeros(len(items), np.float32)
    mean = np.full(len(items), np.nan, np.float32)
    mine = franchise[profile.item_idx]
    keep = mine >= 0
    if not keep.any():
        return seen, mean
    groups, ratings = mine[keep], profile.ratings[keep]
    codes, inverse = np.unique(groups, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(codes))
    explicit = ratings > 0
    sums = np.bincount(inverse[explicit], weights=ratings[explicit], minlength=len(codes))
    rated = np.bincount(inverse[explicit], minlength=len(codes))
    target = franchise[items]
    where = np.searchsorted(codes, target)
    where = np.clip(where, 0, len(codes) - 1)
    hit = (target >= 0) & (codes[where] == target)
    seen[hit] = counts[where[hit]]
    with_rating = hit & (rated[where] > 0)
    mean[with_rating] = sums[where[with_rating]] / rated[where[with_rating]]
    return seen, mean


def holdout(ratings: sp.csr_matrix, fraction: float, *, min_ratings: int = 5,
            random_state: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split each user's explicit ratings: a seeded ``fraction`` held out, the rest kept.

    Users with fewer than ``min_ratings`` explicit ratings, and every -1 row,
    stay whole in the kept matrix. Returns (kept, held_out), same shape.
    """
    ratings = sp.csr_matrix(ratings)
    rng = np.random.default_rng(random_state)
    keys = rng.random(ratings.nnz)
    explicit = ratings.data > 0
    rows = np.repeat(np.arange(ratings.shape[0]), np.diff(ratings.indptr))
    n_explicit = np.bincount(rows[explicit], minlength=ratings.shape[0])
    # Rank of each explicit entry within its row by the random key.
    order = np.lexsort((keys, ~explicit, rows))
    starts = ratings.indptr[:-1]
    rank = np.empty(ratings.nnz, np.int64)
    rank[order] = np.arange(ratings.nnz) - starts[rows[order]]
    n_out = np.floor(n_explicit * fraction).astype(np.int64)
    held = explicit & (n_explicit[rows] >= min_ratings) & (rank < np.maximum(1, n_out[rows]))
    kept = ratings.copy()
    kept.data = np.where(held, 0, ratings.data).astype(ratings.dtype)
    kept.eliminate_zeros()
    out = ratings.copy()
    out.data = np.where(held, ratings.data, 0).astype(ratings.dtype)
    out.eliminate_zeros()
    return kept.tocsr(), out.tocsr()
