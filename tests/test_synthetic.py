"""The synthetic data generator: shape statistics, determinism, Kaggle CSV format."""

import numpy as np
import pandas as pd
import pytest

from recommender import RecommenderEngine
from recommender.data.catalog import clean_ratings, read_anime_csv
from recommender.data.synthetic import SyntheticRatings, compare_table, generate, rating_stats


@pytest.fixture(scope="module")
def bundled_like():
    gen = SyntheticRatings("bundled", random_state=3)
    return gen, gen.ratings()


def test_shape_matches_the_real_subset(bundled_like):
    gen, ratings = bundled_like
    stats = rating_stats(ratings)
    assert stats["users"] == 5877
    assert 0.95 * 612_076 <= stats["rows"] <= 1.05 * 612_076
    assert 50 <= stats["rows_per_user_median"] <= 62
    assert 1_000 <= stats["rows_per_user_max"] <= 2_000
    assert 0.16 <= stats["unrated_share"] <= 0.23
    # heavy tail: the top 1% of anime hold far more than 1% of the rows
    assert stats["top1pct_anime_row_share"] > 0.08
    assert stats["top10pct_anime_row_share"] > 0.45
    assert 7.5 <= stats["mean_explicit_rating"] <= 8.1


def test_rows_are_valid_sorted_and_unique(bundled_like):
    gen, ratings = bundled_like
    assert set(np.unique(ratings["rating"])) <= {-1, *range(1, 11)}
    assert not ratings.duplicated(["user_id", "anime_id"]).any()
    keys = ratings["user_id"].to_numpy() * 10**6 + ratings["anime_id"].to_numpy()
    assert (np.diff(keys) > 0).all()
    assert set(ratings["anime_id"]) <= set(gen.anime["anime_id"])


def test_taste_structure_users_in_a_cluster_rate_it_higher():
    gen = SyntheticRatings("tiny", random_state=1)
    ratings = gen.ratings()
    rated = ratings[ratings["rating"] > 0]
    users = gen._users(np.random.default_rng([1, 10, 1]), gen.scale.n_users)
    rows = rated["user_id"].to_numpy() - 1
    items = np.searchsorted(gen.anime["anime_id"].to_numpy(), rated["anime_id"].to_numpy())
    favourite = (users["favourites"][rows] == gen.cluster[items][:, None]).any(axis=1)
    values = rated["rating"].to_numpy()
    assert values[favourite].mean() > values[~favourite].mean()


def test_same_seed_same_data_other_seed_other_data():
    a = SyntheticRatings("tiny", random_state=5).ratings()
    b = SyntheticRatings("tiny", random_state=5).ratings()
    c = SyntheticRatings("tiny", random_state=6).ratings()
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_written_csvs_read_back_into_the_engine(tmp_path):
    stats = generate("tiny", tmp_path, random_state=2)
    anime = read_anime_csv(tmp_path / "anime.csv")
    raw = pd.read_csv(tmp_path / "rating.csv")
    assert list(raw.columns) == ["user_id", "anime_id", "rating"]
    assert len(raw) == stats["rows"]
    ratings = clean_ratings(raw)
    from tests.conftest import TINY_PARAMS

    engine = RecommenderEngine.from_frames(anime, ratings, TINY_PARAMS)
    user = int(engine.user_ids()[0])
    recs = engine.recommend(user, algorithm="hybrid", n=5)
    assert len(recs) == 5
    table = compare_table(stats, "tiny")
    assert "unrated_share" in table and "rows_per_user_median" in table
