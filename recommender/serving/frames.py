"""Result frames: ranked positions and scores turned into the DataFrames the API returns.

Columns are gathered as arrays and each frame is built in one call: pandas
indexing of the catalogue and adding columns one at a time cost more than the
scoring itself (cProfile, README "Performance").
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from recommender.core.matrix import matrix_nbytes
from recommender.core.types import Explanation, Scorer, Scores, Snapshot, UserProfile
from recommender.errors import InvalidParameterError
from recommender.models.registry import HYBRID
from recommender.models.user_knn import Neighbours
from recommender.serving.search import SearchHits

#: Catalogue columns kept as arrays for building frames.
_CATALOGUE = ("anime_id", "name", "english_name", "type", "episodes", "genre", "rating",
              "members")


class ResultFrames:
    """Builds every frame the engine returns, from catalogue arrays."""

    def __init__(self, anime: pd.DataFrame, models: Mapping[str, Scorer]):
        self._anime = anime
        self._models = models
        self._catalogue = {column: anime[column].to_numpy() for column in _CATALOGUE}

    def catalogue_rows(self, item_idx: np.ndarray) -> pd.DataFrame:
        """Catalogue rows for positions, in the given order."""
        return self._anime.iloc[np.asarray(item_idx, dtype=np.int64)].reset_index(drop=True)

    # -- recommendations --------------------------------------------------------------
    def recommendations(self, profile: UserProfile, items: np.ndarray, source: list[int],
                        chain: list[Scores], parts: Mapping[str, Scores],
                        algorithm: str) -> pd.DataFrame:
        """``rank``, ``anime_id``, ``name``, ``score``, ``source``, ``reason`` and details."""
        catalogue = self._catalogue
        scores = np.array([chain[s].values[i] for s, i in zip(source, items)], dtype=np.float64)
        columns: dict[str, object] = {
            "rank": np.arange(1, len(items) + 1),
            "anime_id": catalogue["anime_id"][items],
            "name": catalogue["name"][items],
            "english_name": catalogue["english_name"][items],
            "score": scores.astype(np.float32),
            "source": [chain[s].method for s in source],
        }
        reasons: list[list[str]] = [[] for _ in items]
        # Explain each row by every part that had evidence for it.
        explainers = list(parts.items())
        if "popularity" not in parts:
            explainers.append(("popularity", chain[-1]))
        from_popularity = np.array([chain[s].method == "popularity" for s in source], dtype=bool)
        for name, scores_of in explainers:
            has = scores_of.values[items] > 0 if len(items) else np.zeros(0, bool)
            if name == "popularity" and len(explainers) > 1:
                has &= from_popularity  # popularity only explains rows nothing personal placed
            if not has.any():
                continue
            explained = self._models[name].explain(profile, items[has], scores_of)
            for row, text in zip(np.flatnonzero(has), explained.reasons):
                reasons[row].append(text)
            columns.update(self._explanation_columns(len(items), has, explained))
            if name in ("user-user", "content"):
                for key, values in scores_of.details.items():
                    columns[key] = values[items]
        if algorithm == HYBRID:
            for key, values in chain[0].details.items():
                columns[key] = values[items].astype(np.float32)
        columns["reason"] = ["; ".join(r) if r else "" for r in reasons]
        for column, target in (("type", "type"), ("episodes", "episodes"), ("genre", "genre"),
                               ("rating", "community_rating"), ("members", "members")):
            columns[target] = catalogue[column].take(items)
        return pd.DataFrame(columns)

    def _explanation_columns(self, n_rows: int, has: np.ndarray,
                             explained: Explanation) -> dict[str, object]:
        ids, names = self._catalogue["anime_id"], self._catalogue["name"]
        columns: dict[str, object] = {}
        for key, values in explained.columns.items():
            full: list = [[] if key == "neighbours" else None for _ in range(n_rows)]
            for row, value in zip(np.flatnonzero(has), values):
                full[row] = value
            if key == "because_items":  # learned models: the user's top contributors
                columns["because_anime_ids"] = [[int(ids[i]) for i in v or []] for v in full]
                columns["because_names"] = [[str(names[i]) for i in v or []] for v in full]
            elif key == "because_idx":
                columns["because_anime_id"] = pd.array(
                    [None if v is None else int(ids[v]) for v in full], dtype="Int64")
                columns["because_name"] = [None if v is None else names[v] for v in full]
            else:
                columns[key] = full
        return columns

    # -- other frames -----------------------------------------------------------------
    @staticmethod
    def neighbours(snapshot: Snapshot, profile: UserProfile, found: Neighbours) -> pd.DataFrame:
        """``rank``, ``user_id``, ``similarity``, ``shared`` (anime both watched), ``n_ratings``."""
        ratings = snapshot.data.ratings
        mine = np.zeros(ratings.shape[1], dtype=bool)
        mine[profile.item_idx] = True
        idx = found.user_idx
        shared = np.zeros(len(idx), dtype=np.int64)
        if len(idx):
            sub = ratings[idx]
            if sub.nnz:
                # reduceat repeats a value for empty rows; an empty row shares nothing.
                sums = np.add.reduceat(mine[sub.indices].astype(np.int64), sub.indptr[:-1])
                shared = np.where(np.diff(sub.indptr) > 0, sums, 0)
        return pd.DataFrame({
            "rank": np.arange(1, len(idx) + 1),
            "user_id": snapshot.data.users.ids[idx],
            "similarity": found.similarity,
            "shared": np.asarray(shared, dtype=np.int64),
            "n_ratings": np.diff(ratings.indptr)[idx] if len(idx) else np.zeros(0, np.int64),
        })

    def search(self, hits: SearchHits) -> pd.DataFrame:
        """``anime_id``, ``name``, ``english_name``, ``matched_title``, ``matched_on``, ..."""
        items, c = hits.item_idx, self._catalogue
        return pd.DataFrame({
            "anime_id": c["anime_id"][items], "name": c["name"][items],
            "english_name": c["english_name"][items], "matched_title": hits.matched_title,
            "matched_on": hits.matched_on, "match_score": hits.match_score,
            "type": c["type"][items], "members": c["members"][items],
        })

    def similar(self, found: np.ndarray, sims: np.ndarray) -> pd.DataFrame:
        """``rank``, ``anime_id``, ``name``, ``english_name``, ``similarity``, catalogue columns."""
        c = self._catalogue
        return pd.DataFrame({
            "rank": np.arange(1, len(found) + 1),
            "anime_id": c["anime_id"][found], "name": c["name"][found],
            "english_name": c["english_name"][found],
            "similarity": np.asarray(sims, dtype=np.float32),
            "genre": c["genre"][found], "type": c["type"][found], "members": c["members"][found],
        })

    def user_ratings(self, profile: UserProfile) -> pd.DataFrame:
        """A user's anime, best rated first (-1 = watched, not rated, last)."""
        anime = self.catalogue_rows(profile.item_idx)
        frame = anime[["anime_id", "name", "english_name", "genre", "type", "members"]].copy()
        frame.insert(2, "rating", profile.ratings.astype(np.int16))
        return frame.sort_values(["rating", "members"], ascending=False,
                                 kind="stable").reset_index(drop=True)


def group_franchises(frame: pd.DataFrame) -> pd.DataFrame:
    """A :meth:`recommend` result with each franchise folded into its first row.

    Keeps the rows that lead their franchise, in order, and adds ``also_ids``
    and ``also_names`` (the later rows of the same franchise) and ``grouped``
    (e.g. "3 more of Gintama", "" for none), so a card can stand for a series.
    """
    if "franchise" not in frame:
        raise InvalidParameterError("group_franchises needs a frame from recommend()")
    also_ids: dict[int, list[int]] = {}
    also_names: dict[int, list[str]] = {}
    first: dict[int, int] = {}
    for row, (group, anime_id, name) in enumerate(
            zip(frame["franchise"], frame["anime_id"], frame["name"])):
        key = int(group)
        if key >= 0 and key in first:
            also_ids[first[key]].append(int(anime_id))
            also_names[first[key]].append(str(name))
            continue
        if key >= 0:
            first[key] = row
        also_ids[row], also_names[row] = [], []
    out = frame.iloc[sorted(also_ids)].reset_index(drop=True)
    rows = sorted(also_ids)
    out["also_ids"] = [also_ids[r] for r in rows]
    out["also_names"] = [also_names[r] for r in rows]
    out["grouped"] = [f"{len(also_ids[r])} more of {frame['name'].iloc[r]}"
                      if also_ids[r] else "" for r in rows]
    out.attrs = dict(frame.attrs)
    return out


def sizes(snapshot: Snapshot, knn) -> dict:
    """Users, anime, ratings, matrix and user-index memory of one snapshot (the dashboard's)."""
    ratings = snapshot.data.ratings
    n_users, n_items = ratings.shape
    return {
        "users": int(n_users),
        "anime": int(n_items),
        "rated_anime": int((np.bincount(ratings.indices, minlength=n_items) > 0).sum()),
        "ratings": int(ratings.nnz),
        "watched_unrated": int((ratings.data < 0).sum()),
        "matrix_bytes": matrix_nbytes(ratings),
        "dense_bytes": int(n_users) * int(n_items) * 4,
        "index_elements": len(knn.index_),
        "index_bytes": knn.index_.nbytes(),
        "vector_dim": int(knn.components_.shape[0]),
    }
