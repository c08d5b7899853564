"""The engine's frames as the API's response bodies: plain JSON values, never NaN.

Data-supplied text (names, synopses) is returned as it is, as a JSON string;
escaping it is the job of whatever displays it.
"""

from __future__ import annotations

import math

import pandas as pd

from recommender.api import schemas

MAL_URL = "https://myanimelist.net/anime/{}"


def anime_url(anime_id: int) -> str:
    """The MyAnimeList page of an anime (the Kaggle data's ids are MyAnimeList's)."""
    return MAL_URL.format(int(anime_id))


def _int(value) -> int | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return int(number) if math.isfinite(number) else None


def _float(value) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value) -> str | None:
    """Text, or None for a missing or empty value."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value)
    return text or None


def _columns(frame: pd.DataFrame, names: tuple[str, ...]) -> dict[str, list]:
    """Each column as a list (missing columns as Nones): one pass, no per-row pandas access."""
    return {name: (frame[name].tolist() if name in frame.columns else [None] * len(frame))
            for name in names}


_RECOMMENDED = ("rank", "anime_id", "name", "english_name", "score", "reason", "genre", "type",
                "episodes", "community_rating", "members")


def recommendations(frame: pd.DataFrame) -> schemas.Recommendations:
    c = _columns(frame, _RECOMMENDED)
    items = [schemas.RecommendedAnime(
        rank=int(c["rank"][i]), anime_id=int(c["anime_id"][i]), name=str(c["name"][i]),
        english_name=_text(c["english_name"][i]), score=_float(c["score"][i]) or 0.0,
        reason=_text(c["reason"][i]) or "", genre=_text(c["genre"][i]),
        type=_text(c["type"][i]), episodes=_int(c["episodes"][i]),
        community_rating=_float(c["community_rating"][i]), members=_int(c["members"][i]),
        url=anime_url(c["anime_id"][i])) for i in range(len(frame))]
    attrs = frame.attrs
    weight = attrs.get("weight")
    return schemas.Recommendations(
        method=str(attrs.get("method", "")), requested=str(attrs.get("requested", "")),
        fallback=bool(attrs.get("fallback", False)),
        weight=None if weight is None else _float(weight),
        unknown_ids=[int(i) for i in attrs.get("unknown_ids", [])], items=items)


def search(frame: pd.DataFrame) -> schemas.SearchResults:
    c = _columns(frame, ("anime_id", "name", "matched_title", "match_score"))
    return schemas.SearchResults(items=[schemas.SearchHit(
        anime_id=int(c["anime_id"][i]), name=str(c["name"][i]),
        matched=str(c["matched_title"][i]), score=_float(c["match_score"][i]) or 0.0)
        for i in range(len(frame))])


def neighbours(frame: pd.DataFrame, *, exact: bool,
               recall: float | None = None) -> schemas.Neighbours:
    c = _columns(frame, ("user_id", "similarity", "shared"))
    return schemas.Neighbours(exact=exact, recall=recall, items=[schemas.Neighbour(
        user_id=int(c["user_id"][i]), similarity=_float(c["similarity"][i]) or 0.0,
        shared=int(c["shared"][i])) for i in range(len(frame))])


def anime(frame: pd.DataFrame) -> schemas.Anime:
    """The first row of a catalogue frame."""
    row = frame.iloc[0]
    anime_id = int(row["anime_id"])
    return schemas.Anime(
        anime_id=anime_id, name=str(row["name"]), english_name=_text(row.get("english_name")),
        japanese_name=_text(row.get("japanese_name")), genre=_text(row.get("genre")),
        type=_text(row.get("type")), episodes=_int(row.get("episodes")),
        community_rating=_float(row.get("rating")), members=_int(row.get("members")),
        synopsis=_text(row.get("synopsis")), url=anime_url(anime_id))


def similar(frame: pd.DataFrame, model: str) -> schemas.SimilarList:
    c = _columns(frame, ("rank", "anime_id", "name", "english_name", "similarity", "genre",
                         "type", "members"))
    return schemas.SimilarList(model=model, items=[schemas.SimilarAnime(
        rank=int(c["rank"][i]), anime_id=int(c["anime_id"][i]), name=str(c["name"][i]),
        english_name=_text(c["english_name"][i]), similarity=_float(c["similarity"][i]) or 0.0,
        genre=_text(c["genre"][i]), type=_text(c["type"][i]), members=_int(c["members"][i]),
        url=anime_url(c["anime_id"][i])) for i in range(len(frame))])
