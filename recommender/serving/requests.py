"""Request checks: every argument of a public call, validated before any work is done.

Profiles are built here from one :class:`~recommender.core.types.Snapshot`, the
one the whole request then reads. Errors are the package's own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Real

import numpy as np
import pandas as pd

from recommender.core.types import Snapshot, UserProfile
from recommender.core.validate import parse_id, whole_number
from recommender.errors import (
    EmptyInputError,
    InvalidParameterError,
    UnknownAnimeError,
    UnknownUserError,
)

#: Bounds on request sizes: far above any real use, low enough that one call
#: cannot tie up a shared server.
MAX_N = 500
MAX_K = 500
MAX_LIST = 5000
#: A listed anime without a rating counts as liked, with this rating.
LIKED_RATING = 10.0


def count(value: object, name: str, upper: int) -> int:
    """A count in 1..``upper`` (``n``, ``k``, ``limit``)."""
    return whole_number(value, name, 1, upper)


def user_row(snapshot: Snapshot, user_id: object) -> int:
    """The matrix row of ``user_id``; :class:`UnknownUserError` when there is none."""
    number = parse_id(user_id)
    if number is None:
        raise UnknownUserError(f"user {_shown(user_id)} is not a user id")
    row = snapshot.data.users.number(number)
    if row < 0:
        raise UnknownUserError(f"unknown user {number}", user_id=number)
    return row


def anime_position(snapshot: Snapshot, anime_id: object) -> int:
    """The catalogue position of ``anime_id``; :class:`UnknownAnimeError` when there is none."""
    number = parse_id(anime_id)
    if number is None:
        raise UnknownAnimeError(f"anime {_shown(anime_id)} is not an anime id")
    item = snapshot.data.items.number(number)
    if item < 0:
        raise UnknownAnimeError(f"unknown anime {number}")
    return item


def user_profile(snapshot: Snapshot, user_id: object) -> UserProfile:
    """The profile of a known user, as that snapshot has them."""
    row = user_row(snapshot, user_id)
    ratings = snapshot.data.ratings
    start, end = ratings.indptr[row], ratings.indptr[row + 1]
    return UserProfile(item_idx=ratings.indices[start:end].astype(np.int64),
                       ratings=ratings.data[start:end].astype(np.float32),
                       user_idx=row, user_id=int(snapshot.data.users.ids[row]))


def liked_profile(snapshot: Snapshot, liked: object) -> tuple[UserProfile, list[int]]:
    """A what-if profile from ``{anime_id: rating or None}`` or a list of ids.

    No rating means liked (counted as :data:`LIKED_RATING`). Unknown ids are
    dropped and returned; a list with nothing known is an :class:`EmptyInputError`.
    """
    pairs = liked_pairs(liked)
    ids = np.array([p[0] for p in pairs], dtype=np.int64)
    ratings = np.array([p[1] for p in pairs], dtype=np.float32)
    pos = snapshot.data.items.numbers(ids)
    unknown = [int(i) for i in ids[pos < 0]]
    keep = pos >= 0
    if not keep.any():
        raise EmptyInputError(
            f"none of the listed anime are in the catalogue (unknown ids: {unknown[:10]})")
    pos, ratings = pos[keep], ratings[keep]
    # A title listed twice keeps its last rating.
    _, last = np.unique(pos[::-1], return_index=True)
    sel = len(pos) - 1 - last
    return UserProfile(item_idx=pos[sel], ratings=ratings[sel]), unknown


def profile(snapshot: Snapshot, user_id: object = None,
            liked: object = None) -> tuple[UserProfile, list[int]]:
    """Exactly one of a known user or a what-if list, as a profile (and unknown ids)."""
    if (user_id is None) == (liked is None):
        raise InvalidParameterError("give exactly one of user_id or liked")
    if user_id is not None:
        return user_profile(snapshot, user_id), []
    return liked_profile(snapshot, liked)


def saved_ratings(snapshot: Snapshot, liked: object) -> pd.DataFrame:
    """The ``anime_id``, ``rating`` rows of a new user who rated ``liked`` (whole numbers)."""
    profile, _unknown = liked_profile(snapshot, liked)
    ratings = profile.ratings
    if not np.all(ratings == np.round(ratings)):
        raise InvalidParameterError("ratings of a saved user must be whole numbers "
                                    "(-1 = watched, or 1..10)")
    return pd.DataFrame({"anime_id": snapshot.data.items.ids[profile.item_idx].astype(np.int64),
                         "rating": ratings.astype(np.int16)})


def liked_pairs(liked: object) -> list[tuple[int, float]]:
    """``(anime_id, rating)`` pairs of a what-if list, every value checked."""
    if isinstance(liked, Mapping):
        raw = list(liked.items())
    elif isinstance(liked, (str, bytes)) or not isinstance(liked, Iterable):
        raise InvalidParameterError("liked must be a mapping {anime_id: rating} or a list of ids")
    else:
        raw = []
        for x in liked:
            raw.append((x, None))
            if len(raw) > MAX_LIST:
                break
    if not raw:
        raise EmptyInputError("the list of liked anime is empty")
    if len(raw) > MAX_LIST:
        raise InvalidParameterError(f"the list has more than {MAX_LIST} anime; at most {MAX_LIST}")
    pairs = []
    for anime_id, rating in raw:
        number = parse_id(anime_id)
        if number is None:
            raise InvalidParameterError(f"anime id {_shown(anime_id)} is not a whole number")
        pairs.append((number, rating_value(rating, number)))
    return pairs


def rating_value(rating: object, anime_id: int) -> float:
    """A listed rating: None (liked), -1 (watched) or 1..10."""
    if rating is None:
        return LIKED_RATING
    if isinstance(rating, (bool, np.bool_)) or not isinstance(rating, (Real, np.number)):
        raise InvalidParameterError(f"rating {_shown(rating)} of anime {anime_id} is not a number")
    value = float(rating)
    if math.isnan(value) or not (value == -1 or 1 <= value <= 10):
        raise InvalidParameterError(
            f"rating {_shown(rating)} of anime {anime_id} must be -1 (watched) or 1..10")
    return value


def excluded_positions(snapshot: Snapshot, exclude: object) -> np.ndarray:
    """Catalogue positions of ``exclude`` (anime ids; unknown ones are ignored)."""
    if exclude is None:
        return np.empty(0, np.int64)
    if isinstance(exclude, (str, bytes, Mapping)) or not isinstance(exclude, Iterable):
        raise InvalidParameterError("exclude must be a list of anime ids")
    ids = []
    for value in exclude:
        number = parse_id(value)
        if number is None:
            raise InvalidParameterError(f"exclude: {_shown(value)} is not an anime id")
        ids.append(number)
        if len(ids) > MAX_LIST:
            raise InvalidParameterError(f"exclude holds more than {MAX_LIST} anime")
    pos = snapshot.data.items.numbers(np.asarray(ids, dtype=np.int64))
    return pos[pos >= 0]


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"
