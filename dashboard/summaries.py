"""Measurements and summaries the dashboard plots: data overviews, neighbours, latency.

Everything here takes a :class:`~recommender.serving.engine.RecommenderEngine` (or plain
arrays) and returns DataFrames or dicts, so the pages only draw. Nothing here
imports streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recommender.core.profiling import Profiler, StageRecord
from recommender.core.types import LIKE_RATING
from recommender.models.content import split_genres
from recommender.tools.measure import recall_at_k


# ---------------------------------------------------------------------- data at a glance
def dataset_summary(engine) -> dict:
    """Counts for the home page: users, anime, ratings, watched-unrated and density."""
    stats = engine.stats()
    cells = stats["users"] * stats["anime"]
    return {
        "users": stats["users"],
        "anime": stats["anime"],
        "rated_anime": stats["rated_anime"],
        "ratings": stats["ratings"],
        "watched_unrated": stats["watched_unrated"],
        "density": stats["ratings"] / cells if cells else 0.0,
    }


def rating_distribution(engine) -> pd.DataFrame:
    """How many ratings of each value, -1 ("watched, not rated") included.

    Columns: ``rating`` (int, -1 and 1..10, every value present even at 0),
    ``count`` (int) and ``label`` (text for a categorical axis).
    """
    values = np.rint(engine.data.ratings.data).astype(np.int64)
    levels = np.array([-1, *range(1, 11)])
    counts = np.array([(values == v).sum() for v in levels], dtype=np.int64)
    labels = ["-1 (watched)" if v == -1 else str(v) for v in levels]
    return pd.DataFrame({"rating": levels, "count": counts, "label": labels})


def _genre_lists(genres: pd.Series) -> pd.Series:
    return genres.fillna("").map(split_genres)


def genre_counts(engine, top: int = 25) -> pd.DataFrame:
    """Anime per genre in the catalogue, largest first: ``genre``, ``anime``."""
    exploded = _genre_lists(engine.anime["genre"]).explode().dropna()
    counts = exploded.value_counts().head(top)
    return pd.DataFrame({"genre": counts.index.astype(str), "anime": counts.to_numpy()})


# ---------------------------------------------------------------------- recommendations
def top_n_changes(before: Sequence[int], after: Sequence[int]) -> tuple[list[int], list[int]]:
    """Anime ids that entered and that left a top-N list, each in list order."""
    old, new = set(before), set(after)
    return [a for a in after if a not in old], [a for a in before if a not in new]


# ---------------------------------------------------------------------- neighbours
def similarity_distribution(engine, user_id: int, k: int = 200) -> pd.DataFrame:
    """Exact cosine similarities of the user's ``k`` nearest users (``rank``, ``similarity``)."""
    exact = engine.neighbors(user_id, k=k, exact=True)
    return exact[["rank", "user_id", "similarity"]]


def ann_and_exact_neighbours(engine, user_id: int, k: int) -> dict:
    """The user's neighbours from the index (re-ranked) and by brute force, and recall@k."""
    ann = engine.neighbors(user_id, k=k)
    exact = engine.neighbors(user_id, k=k, exact=True)
    return {"ann": ann, "exact": exact,
            "recall": recall_at_k(ann["user_id"], exact["user_id"])}


def shared_ratings(engine, user_id: int, neighbour_ids: Sequence[int],
                   max_anime: int = 30) -> pd.DataFrame:
    """Ratings of the user and the neighbours on the anime the user watched.

    Rows: ``user <id>`` first, then the neighbours in the given order; columns:
    the anime the user watched that most neighbours also watched (at most
    ``max_anime``, most shared first). Cells hold the raw rating (-1 = watched,
    not rated) or NaN where that user did not watch it. Empty when nothing is shared.
    """
    data = engine.data
    rows = data.users.numbers(np.asarray([user_id, *neighbour_ids], dtype=np.int64))
    if rows[0] < 0:
        return pd.DataFrame()
    rows = rows[rows >= 0]
    sub = data.ratings[rows].toarray()  # a few dozen rows: dense is small here
    watched = sub != 0
    mine = watched[0]
    shared = watched[1:].sum(axis=0) * mine
    cols = np.flatnonzero(shared > 0)
    if len(cols) == 0:
        return pd.DataFrame()
    cols = cols[np.lexsort((cols, -shared[cols]))][:max_anime]
    values = np.where(watched[:, cols], sub[:, cols], np.nan)
    names = data.anime["name"].to_numpy()[cols]
    index = [f"user {int(data.users.ids[r])}" for r in rows]
    index[0] = f"user {int(user_id)} (chosen)"
    return pd.DataFrame(values, index=index, columns=names)


def genre_profile(engine, user_id: int, neighbour_ids: Sequence[int],
                  like_threshold: float | None = None, top: int = 15) -> pd.DataFrame:
    """Share of liked anime in each genre, for the user and for the neighbours together.

    A like is a rating at or above ``like_threshold`` (the engine's by default).
    Columns: ``genre``, ``group`` ("user" or "neighbours"), ``share`` in [0, 1];
    the ``top`` genres by the larger of the two shares.
    """
    threshold = LIKE_RATING if like_threshold is None else like_threshold
    data = engine.data
    genre_sets = _genre_lists(data.anime["genre"]).to_numpy()

    def shares(rows: np.ndarray) -> pd.Series:
        sub = data.ratings[rows]
        liked = sub.indices[sub.data >= threshold]
        if len(liked) == 0:
            return pd.Series(dtype=float)
        counts = pd.Series([g for item in liked for g in genre_sets[item]]).value_counts()
        return counts / len(liked)

    me = data.users.numbers(np.asarray([user_id], dtype=np.int64))
    others = data.users.numbers(np.asarray(list(neighbour_ids), dtype=np.int64))
    frame = pd.DataFrame({"user": shares(me[me >= 0]),
                          "neighbours": shares(others[others >= 0])}).fillna(0.0)
    if frame.empty:
        return pd.DataFrame(columns=["genre", "group", "share"])
    frame = frame.loc[frame.max(axis=1).sort_values(ascending=False).index[:top]]
    frame.index.name = "genre"
    return frame.reset_index().melt(id_vars="genre", var_name="group", value_name="share")


# ---------------------------------------------------------------------- timings
def request_breakdown(records: Sequence[StageRecord], last: int = 20,
                      request_stage: str = "recommend") -> pd.DataFrame:
    """Per-stage milliseconds of the latest ``last`` requests.

    A stage belongs to a request when it started inside that request's time
    window (stages nest: ``recommend`` wraps ``user-user``, ``content``...).
    Columns: ``request`` (1 = oldest shown), ``stage``, ``ms``; a stage named
    "other" holds the request time no inner stage accounts for.
    """
    records = list(records)
    requests = [r for r in records if r.stage == request_stage][-last:]
    rows = []
    for number, req in enumerate(requests, start=1):
        end = req.started_at + req.seconds
        inner = [r for r in records if r is not req and r.stage != request_stage
                 and req.started_at <= r.started_at <= end]
        total = 0.0
        for rec in inner:
            rows.append((number, rec.stage, rec.seconds * 1000.0))
            total += rec.seconds
        rows.append((number, "other", max(req.seconds - total, 0.0) * 1000.0))
    frame = pd.DataFrame(rows, columns=["request", "stage", "ms"])
    return frame.groupby(["request", "stage"], as_index=False, sort=False)["ms"].sum()


def build_stages(profiler: Profiler,
                 stages: Sequence[str] = ("load", "matrix", "popularity fit", "content fit",
                                          "similarity rows", "vectors", "index build",
                                          "user-user fit", "mf fit", "ease fit",
                                          "title index", "index load",
                                          "models load")) -> pd.DataFrame:
    """The latest record of each build stage: ``stage``, ``seconds``, ``peak_mib``."""
    frame = profiler.frame()
    frame = frame[frame["stage"].isin(stages)]
    latest = frame.groupby("stage", sort=False).tail(1)
    return latest[["stage", "seconds", "peak_mib"]].reset_index(drop=True)
