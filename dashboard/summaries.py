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
from recommender.data.catalog import anime_url
from recommender.evaluation.metrics import tie_aware_recall, tied_at_cutoff
from recommender.models import neighbour_insight as insight
from recommender.models.content import split_genres


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
    """The user's neighbours from the index (re-ranked) and by brute force, and recall@k.

    Recall is tie-aware: an index neighbour exactly as similar as the k-th exact
    neighbour counts as found (``tied`` lists them); ``missed`` are the exact
    neighbours the index did not return, ties excluded.
    """
    ann = engine.neighbors(user_id, k=k)
    exact = engine.neighbors(user_id, k=k, exact=True)
    args = (ann["user_id"].to_numpy(), ann["similarity"].to_numpy(),
            exact["user_id"].to_numpy(), exact["similarity"].to_numpy())
    tied = [int(u) for u in tied_at_cutoff(*args)]
    in_ann = set(ann["user_id"].astype(int))
    not_found = sorted(set(exact["user_id"].astype(int)) - in_ann)
    # As many exact neighbours as there are ties were "replaced" by an equal one.
    cutoff = float(exact["similarity"].min()) if len(exact) else 0.0
    at_cutoff = [u for u in not_found
                 if np.isclose(exact.loc[exact["user_id"] == u, "similarity"].iloc[0], cutoff,
                               rtol=1e-5)]
    excused = set(at_cutoff[:len(tied)])
    return {"ann": ann, "exact": exact, "recall": tie_aware_recall(*args), "tied": tied,
            "missed": [u for u in not_found if u not in excused],
            "cutoff": cutoff}


def _rating_text(value: float) -> str:
    return "watched" if value < 0 else f"{value:g}"


def neighbour_evidence(engine, user_id: int, neighbours: pd.DataFrame,
                       top: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Why each neighbour is similar: the shared titles weighted by rarity and agreement.

    Returns ``neighbours`` with ``why`` (the ``top`` titles with both ratings,
    "user's / neighbour's") and ``thin`` (fewer than
    :data:`~recommender.models.neighbour_insight.MIN_SHARED` shared titles), and a
    long frame of those titles: ``neighbour``, ``anime_id``, ``name``, ``chosen``,
    ``theirs`` (ratings, -1 = watched), ``weight``, ``url`` (MyAnimeList).
    """
    data = engine.data
    ratings = data.ratings
    out = neighbours.copy()
    out["thin"] = insight.thin_overlap(out["shared"].to_numpy())
    me = data.users.numbers(np.asarray([user_id], dtype=np.int64))
    rows = data.users.numbers(out["user_id"].to_numpy(np.int64))
    if me[0] < 0 or len(rows) == 0:
        out["why"] = ""
        return out, pd.DataFrame(columns=["neighbour", "anime_id", "name", "chosen", "theirs",
                                          "weight", "url"])
    watchers = np.bincount(ratings.indices, minlength=ratings.shape[1])
    evidence = insight.why_similar(ratings[me[0]], ratings[rows], watchers, ratings.shape[0],
                                   top=top)
    names = data.anime["name"].to_numpy()
    anime_ids = data.items.ids
    why, long = [], []
    for neighbour, ev in zip(out["user_id"].astype(int), evidence):
        why.append("; ".join(f"{names[i]} ({_rating_text(a)} / {_rating_text(b)})"
                             for i, a, b in zip(ev.item_idx, ev.mine, ev.theirs)))
        long += [(neighbour, int(anime_ids[i]), str(names[i]), float(a), float(b), float(w),
                  anime_url(anime_ids[i]))
                 for i, w, a, b in zip(ev.item_idx, ev.weight, ev.mine, ev.theirs)]
    out["why"] = why
    return out, pd.DataFrame(long, columns=["neighbour", "anime_id", "name", "chosen", "theirs",
                                            "weight", "url"])


def shared_ratings(engine, user_id: int, neighbour_ids: Sequence[int],
                   max_anime: int = 30) -> pd.DataFrame:
    """Ratings of the user and the neighbours on the anime the user watched.

    Rows: ``user <id>`` first, then the neighbours in the given order; columns:
    at most ``max_anime`` of the anime the user and at least one neighbour
    watched, those that best tell the neighbours apart first
    (:func:`~recommender.models.neighbour_insight.discriminative_columns`), not
    the ones everybody watched. Cells hold the raw rating (-1 = watched, not
    rated) or NaN where that user did not watch it. ``attrs["anime_ids"]`` holds
    each column's anime id. Empty when nothing is shared.
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
    grid = np.where(watched[:, cols], sub[:, cols], np.nan)
    chosen = insight.discriminative_columns(grid, max_anime)
    cols, values = cols[chosen], grid[:, chosen]
    names = data.anime["name"].to_numpy()[cols]
    index = [f"user {int(data.users.ids[r])}" for r in rows]
    index[0] = f"user {int(user_id)} (chosen)"
    frame = pd.DataFrame(values, index=index, columns=names)
    frame.attrs["anime_ids"] = [int(a) for a in data.items.ids[cols]]
    return frame


def genre_profile(engine, user_id: int, neighbour_ids: Sequence[int],
                  like_threshold: float | None = None, top: int = 15) -> pd.DataFrame:
    """Share of liked anime in each genre: the user, the neighbours together, and everyone.

    A like is a rating at or above ``like_threshold`` (the engine's by default).
    Columns: ``genre``, ``group`` ("user", "neighbours" or "everyone", the
    whole population's likes as a baseline), ``share`` in [0, 1]; the ``top``
    genres by the larger of the user's and the neighbours' shares.
    """
    threshold = LIKE_RATING if like_threshold is None else like_threshold
    data = engine.data
    ratings = data.ratings
    sets = _genre_lists(data.anime["genre"]).to_list()
    names = sorted({g for genres in sets for g in genres})
    if not names:
        return pd.DataFrame(columns=["genre", "group", "share"])
    column = {g: i for i, g in enumerate(names)}
    genres = np.zeros((len(sets), len(names)))
    for item, item_genres in enumerate(sets):
        genres[item, [column[g] for g in item_genres]] = 1.0

    def likes(rows: np.ndarray) -> np.ndarray:
        sub = ratings[rows]
        return sub.indices[sub.data >= threshold]

    me = data.users.numbers(np.asarray([user_id], dtype=np.int64))
    others = data.users.numbers(np.asarray(list(neighbour_ids), dtype=np.int64))
    groups = {"user": likes(me[me >= 0]), "neighbours": likes(others[others >= 0]),
              "everyone": ratings.indices[ratings.data >= threshold]}
    if len(groups["user"]) == 0 and len(groups["neighbours"]) == 0:
        return pd.DataFrame(columns=["genre", "group", "share"])
    frame = pd.DataFrame({g: insight.liked_genre_shares(items, genres)
                          for g, items in groups.items()}, index=pd.Index(names, name="genre"))
    frame = frame.loc[frame[["user", "neighbours"]].max(axis=1)
                      .sort_values(ascending=False, kind="stable").index[:top]]
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
