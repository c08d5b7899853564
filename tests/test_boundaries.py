"""Every id and number at the boundary goes through one check: huge integers, booleans,
floats, digit strings in other scripts or with underscores, and wrong types all become
the package's own errors (or False from has_user), never OverflowError or TypeError."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.core.validate import parse_id
from recommender.errors import RecommenderError

HOSTILE_ID = st.one_of(
    st.integers(-2**70, 2**70), st.sampled_from([2**63, 2**64 - 1, 2**31, -1, 0]),
    st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.none(),
    st.sampled_from(["1_0", "١٢", "１２", "12 ", " 7", "+3", "-3", "0x10", "1e3", "", "abc",
                     "9" * 40, "4\n", "2.0", b"4"]),
    st.lists(st.integers(1, 5), max_size=2), st.just({"a": 1}), st.just(np.int64(4)),
    st.just(np.float64(4.0)), st.just(np.uint64(2**64 - 1)))
FUZZ = settings(max_examples=150, deadline=None, derandomize=True)


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _outcome(call):
    try:
        return call()
    except RecommenderError as exc:
        assert str(exc) and "\n" not in str(exc)
        return exc


@FUZZ
@given(value=HOSTILE_ID)
def test_has_user_answers_a_bool_for_anything(tiny_engine, value):
    answer = tiny_engine.has_user(value)
    assert answer is (parse_id(value) is not None
                      and tiny_engine.data.users.number(parse_id(value)) >= 0)


@pytest.mark.parametrize("value, expected", [
    (True, None), (2.9, None), (2.0, None), ("1_0", None), ("١٢", None), ("１２", None),
    ("+7", 7), (" 7 ", 7), (np.int64(9), 9), (2**63, None), (2**63 - 1, 2**63 - 1), (-1, None),
    ("9" * 18, int("9" * 18)), ("9" * 19, None), (None, None), ([1], None),
])
def test_the_one_id_check(value, expected):
    assert parse_id(value) == expected


@FUZZ
@given(user=HOSTILE_ID, anime=HOSTILE_ID, exclude=st.lists(HOSTILE_ID, max_size=3),
       algorithm=st.one_of(st.sampled_from(["hybrid", "ease", "user-user"]), st.just(["hybrid"]),
                           st.integers(), st.none()),
       n=HOSTILE_ID, k=st.one_of(st.none(), HOSTILE_ID), weight=HOSTILE_ID)
def test_engine_entry_points_raise_only_the_package_s_errors(
        tiny_engine, user, anime, exclude, algorithm, n, k, weight):
    calls = [
        lambda: tiny_engine.recommend(user, n=3),
        lambda: tiny_engine.recommend(liked={anime: 9} if _hashable(anime) else [anime], n=3),
        lambda: tiny_engine.recommend(liked=[anime, 3], n=3, exclude=exclude),
        lambda: tiny_engine.recommend(2, algorithm=algorithm, n=3),
        lambda: tiny_engine.recommend(2, n=n),
        lambda: tiny_engine.recommend(2, n=3, k=k, weight=weight),
        lambda: tiny_engine.recommend(2, n=3, diversity=weight),
        lambda: tiny_engine.neighbors(user, k=3),
        lambda: tiny_engine.neighbors(2, k=k if k is not None else 3, exact=True),
        lambda: tiny_engine.similar_anime(anime, n=3, model="content"),
        lambda: tiny_engine.user_ratings(user),
        lambda: tiny_engine.anime_by_id([anime, 1]),
        lambda: tiny_engine.search("scifi", limit=n),
    ]
    for call in calls:
        _outcome(call)


def test_exclude_is_checked_and_a_float_excludes_nothing_by_accident(tiny_engine):
    plain = tiny_engine.recommend(2, n=20)["anime_id"].tolist()
    assert plain
    target = plain[0]
    assert target not in tiny_engine.recommend(2, n=20, exclude=[target])["anime_id"].tolist()
    for bad in ([float(target) + 0.9], ["x"], "12", {target: 1}, [2**80], [True]):
        with pytest.raises(RecommenderError):
            tiny_engine.recommend(2, n=20, exclude=bad)


def test_numbers_in_lists_and_saves(tiny_settings):
    from recommender import RecommenderEngine

    engine = RecommenderEngine.from_settings(tiny_settings)
    users = len(engine.user_ids())
    for liked in ({2**70: 9}, {"1_0": 9}, {"١": 9}, {1: 2**70}, {1: math.inf}, {True: 9},
                  {1.0: 9}, {1: "9"}):
        with pytest.raises(RecommenderError):
            engine.add_user(liked)
    assert len(engine.user_ids()) == users
