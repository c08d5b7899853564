"""One contract, run for every algorithm: best first, at most n, nothing watched, no dupes."""

import math

import numpy as np
import pytest

from recommender.errors import (
    EmptyInputError,
    InvalidParameterError,
    RecommenderError,
    UnknownAlgorithmError,
    UnknownUserError,
)

ALGORITHMS = ["user-user", "content", "hybrid", "popularity", "random"]


@pytest.fixture(params=ALGORITHMS)
def algorithm(request):
    return request.param


@pytest.mark.parametrize("n", [1, 5, 15])
def test_contract_for_a_known_user(tiny_engine, algorithm, n):
    user_id = 4
    recs = tiny_engine.recommend(user_id, algorithm=algorithm, n=n)
    watched = set(tiny_engine.user_ratings(user_id)["anime_id"])
    assert len(recs) <= n
    assert not set(recs["anime_id"]) & watched
    assert recs["anime_id"].is_unique
    assert recs["rank"].tolist() == list(range(1, len(recs) + 1))
    # Best first within each source (a fallback source follows the primary one).
    for _, block in recs.groupby("source", sort=False):
        assert (np.diff(block["score"].to_numpy()) <= 1e-6).all()
    assert {"anime_id", "name", "score", "reason"} <= set(recs.columns)


def test_contract_for_a_what_if_list(tiny_engine, algorithm):
    liked = {3: 10, 4: None, 15: -1}
    recs = tiny_engine.recommend(liked=liked, algorithm=algorithm, n=8)
    assert 0 < len(recs) <= 8
    assert not set(recs["anime_id"]) & set(liked)
    assert recs["anime_id"].is_unique


def test_what_if_users_never_change_the_engine(tiny_engine, algorithm):
    snapshot = tiny_engine.snapshot
    arrays = [a.copy() for a in (snapshot.data.ratings.data, snapshot.data.ratings.indices,
                                 snapshot.rows.similarity.data, snapshot.rows.vectors,
                                 snapshot.data.users.ids)]
    labels = np.sort(tiny_engine.knn.index_.labels())
    tiny_engine.recommend(liked={3: 10}, algorithm=algorithm, n=3)
    tiny_engine.neighbors(liked={3: 10, 14: 2}, k=3)
    assert tiny_engine.snapshot is snapshot  # nothing was published
    after = (snapshot.data.ratings.data, snapshot.data.ratings.indices,
             snapshot.rows.similarity.data, snapshot.rows.vectors, snapshot.data.users.ids)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, after))
    assert np.array_equal(np.sort(tiny_engine.knn.index_.labels()), labels)


@pytest.mark.parametrize("kwargs, error", [
    ({"user_id": 123456}, UnknownUserError),
    ({"user_id": "abc"}, UnknownUserError),
    ({"liked": {}}, EmptyInputError),
    ({"liked": []}, EmptyInputError),
    ({"liked": {99999: 10}}, EmptyInputError),
    ({"user_id": 2, "n": 0}, InvalidParameterError),
    ({"user_id": 2, "n": -3}, InvalidParameterError),
    ({"user_id": 2, "n": 10**9}, InvalidParameterError),
    ({"user_id": 2, "weight": 1.5}, InvalidParameterError),
    ({"user_id": 2, "weight": -0.1}, InvalidParameterError),
    ({"user_id": 2, "weight": math.nan}, InvalidParameterError),
    ({"user_id": 2, "algorithm": "magic"}, UnknownAlgorithmError),
    ({"user_id": 2, "collaborative": "magic"}, UnknownAlgorithmError),
    ({"liked": {1: 11}}, InvalidParameterError),
    ({"liked": {1: 0}}, InvalidParameterError),
    ({"liked": {1: math.nan}}, InvalidParameterError),
    ({"liked": {1: "great"}}, InvalidParameterError),
    ({}, InvalidParameterError),
    ({"user_id": 2, "liked": {1: 10}}, InvalidParameterError),
])
def test_errors_are_the_packages_own(tiny_engine, algorithm, kwargs, error):
    kwargs = {"algorithm": algorithm, **kwargs}
    with pytest.raises(error) as info:
        tiny_engine.recommend(**kwargs)
    assert isinstance(info.value, RecommenderError)
    assert str(info.value)


def test_neighbours_and_search_validate_too(tiny_engine):
    with pytest.raises(UnknownUserError):
        tiny_engine.neighbors(999)
    with pytest.raises(InvalidParameterError):
        tiny_engine.neighbors(2, k=0)
    with pytest.raises(InvalidParameterError):
        tiny_engine.search("x" * 1000)
    with pytest.raises(InvalidParameterError):
        tiny_engine.search(None)  # type: ignore[arg-type]
    assert tiny_engine.search("   ").empty


def test_k_is_clamped_to_what_the_index_holds(tiny_engine):
    neighbours = tiny_engine.neighbors(2, k=500)
    assert 0 < len(neighbours) < 40
    assert 2 not in set(neighbours["user_id"])
