"""Tiny data with a known answer: two taste groups must recommend inside their group."""

import numpy as np
import pytest

SCIFI, ROMANCE = set(range(1, 11)), set(range(11, 21))


@pytest.mark.parametrize("algorithm", ["user-user", "content", "hybrid"])
def test_what_if_user_stays_in_their_taste_group(tiny_engine, algorithm):
    recs = tiny_engine.recommend(liked={1: 10, 2: 10, 3: 9}, algorithm=algorithm, n=5)
    assert len(recs) == 5
    assert set(recs["anime_id"]) <= SCIFI - {1, 2, 3}


@pytest.mark.parametrize("user_id", [2, 4, 7, 9])
def test_existing_user_neighbours_share_their_taste(tiny_engine, user_id):
    neighbours = tiny_engine.neighbors(user_id, k=5)
    assert len(neighbours) == 5
    assert user_id not in set(neighbours["user_id"])
    assert all(n % 2 == user_id % 2 for n in neighbours["user_id"])
    assert (np.diff(neighbours["similarity"]) <= 1e-6).all()


def test_user_user_top_pick_is_in_group(tiny_engine):
    for user_id in range(1, 41):
        recs = tiny_engine.recommend(user_id, algorithm="user-user", n=1)
        group = SCIFI if user_id % 2 == 0 else ROMANCE
        assert recs["anime_id"].iloc[0] in group


def test_explanations_name_the_neighbours_and_their_mean(tiny_engine):
    recs = tiny_engine.recommend(2, algorithm="user-user", n=3)
    row = recs.iloc[0]
    assert row["support"] >= 1
    assert f"liked by {row['support']} of your" in row["reason"]
    assert len(row["neighbours"]) == row["support"] or len(row["neighbours"]) == 10
    assert all(n % 2 == 0 for n in row["neighbours"])
    assert 9 <= row["neighbour_mean"] <= 10


def test_content_explanation_names_a_liked_title_and_shared_genres(tiny_engine):
    recs = tiny_engine.recommend(liked=[11], algorithm="content", n=2)
    assert recs["because_anime_id"].iloc[0] == 11
    assert "Romance" in recs["reason"].iloc[0] and "Romance 11" in recs["reason"].iloc[0]


def test_user_with_only_watched_rows_falls_back(tiny_engine):
    recs = tiny_engine.recommend(liked={12: -1, 13: -1}, algorithm="user-user", n=3)
    assert recs.attrs["fallback"] is True
    assert recs.attrs["method"] == "content"
    assert set(recs["source"]) == {"content"}
    assert tiny_engine.neighbors(liked={12: -1}, k=5).empty


def test_unknown_anime_in_a_list_are_reported_not_fatal(tiny_engine):
    recs = tiny_engine.recommend(liked={1: 10, 999: 9}, algorithm="content", n=3)
    assert recs.attrs["unknown_ids"] == [999]
