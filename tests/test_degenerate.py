"""Degenerate data: no ratings, one anime, one user, nothing but -1. The engine starts,
says so, and still answers from content and popularity where it can."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TINY_PARAMS, write_csvs
from recommender import RecommenderEngine
from recommender.config import Settings
from recommender.data.database import create_db_engine, create_tables
from recommender.data.ingest import ingest
from recommender.errors import RecommenderError

GENRES = st.sampled_from(["", "Action", "Action, Sci-Fi", "Romance, Slice of Life", "Comedy"])


@st.composite
def tiny_data(draw):
    n_anime = draw(st.integers(1, 4))
    anime = pd.DataFrame({
        "anime_id": np.arange(1, n_anime + 1),
        "name": [f"Title {i}" for i in range(1, n_anime + 1)],
        "genre": [draw(GENRES) for _ in range(n_anime)],
        "type": [draw(st.sampled_from(["", "TV", "Movie"])) for _ in range(n_anime)],
        "members": [draw(st.integers(0, 10_000)) for _ in range(n_anime)],
    })
    if draw(st.booleans()):
        anime["synopsis"] = [draw(st.sampled_from(["", "a robot fights", "the the the"]))
                             for _ in range(n_anime)]
    n_users = draw(st.integers(0, 3))
    rows = {}
    for user in range(1, n_users + 1):
        for item in draw(st.lists(st.integers(1, n_anime), max_size=n_anime, unique=True)):
            rows[(user, item)] = draw(st.sampled_from([-1, 1, 5, 8, 10]))
    ratings = pd.DataFrame([(u, a, r) for (u, a), r in rows.items()],
                           columns=["user_id", "anime_id", "rating"]).astype(np.int64)
    return anime, ratings


def _answers(engine: RecommenderEngine) -> None:
    """Every query answers with a frame or the package's own error, nothing else."""
    first = int(engine.data.items.ids[0])
    for algorithm in engine.algorithms:
        try:
            frame = engine.recommend(liked={first: 9}, algorithm=algorithm, n=3)
            assert first not in set(frame["anime_id"])
        except RecommenderError:
            pass
    for user in engine.user_ids()[:2]:
        for algorithm in ("hybrid", "user-user", "ease", "popularity"):
            try:
                engine.recommend(int(user), algorithm=algorithm, n=3)
            except RecommenderError:
                pass
        engine.neighbors(int(user), k=3)
        engine.neighbors(int(user), k=3, exact=True)
    engine.search("title")


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=tiny_data())
def test_any_tiny_data_set_starts_and_answers(data):
    anime, ratings = data
    engine = RecommenderEngine.from_frames(anime, ratings, TINY_PARAMS)
    assert engine.stats()["ratings"] == len(ratings)
    if ratings.empty:
        assert "no ratings yet" in engine.build_info["notice"]
    _answers(engine)


def test_with_no_ratings_popularity_follows_the_catalogue_and_content_still_works():
    anime = pd.DataFrame({"anime_id": [1, 2, 3], "name": ["A", "B", "C"],
                          "genre": ["Action", "Action", "Romance"], "members": [10, 300, 20]})
    engine = RecommenderEngine.from_frames(anime, pd.DataFrame(
        columns=["user_id", "anime_id", "rating"]), TINY_PARAMS)
    popular = engine.recommend(liked={1: 10}, algorithm="popularity", n=2)
    assert popular["anime_id"].tolist() == [2, 3]
    assert "300 members" in popular["reason"].iloc[0]
    content = engine.recommend(liked={1: 10}, algorithm="content", n=1)
    assert content["anime_id"].tolist() == [2]  # the other action title


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_database_with_a_catalogue_and_no_ratings_starts(db_url, tmp_path):
    anime = pd.DataFrame({"anime_id": [1, 2], "name": ["Only", "Two"], "genre": ["Drama", ""],
                          "members": [5, 7]})
    anime_path, _ = write_csvs(tmp_path, anime, pd.DataFrame(
        columns=["user_id", "anime_id", "rating"]))
    database = create_db_engine(db_url)
    create_tables(database)
    ingest(database, anime_path, None)
    settings = Settings(database_url=db_url, cache_dir=tmp_path / "cache", params=TINY_PARAMS)
    engine = RecommenderEngine.from_settings(settings)
    assert "no ratings yet" in engine.build_info["notice"]
    assert len(engine.user_ids()) == 0
    _answers(engine)
    user = engine.add_user({1: 9, 2: 3})  # the first user, appended without a rebuild
    assert engine.has_user(user) and engine.user_ratings(user)["anime_id"].tolist() == [1, 2]
    again = RecommenderEngine.from_settings(settings)
    assert again.has_user(user)
    database.dispose()
