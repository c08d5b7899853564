"""Diversity: maximal marginal relevance over genres, without losing the ranking at 0."""

import numpy as np
import pytest

from recommender.errors import InvalidParameterError
from recommender.evaluation import genre_matrix, intra_list_diversity
from recommender.serving.ranking import maximal_marginal_relevance


def test_zero_diversity_is_the_plain_ranking(tiny_engine):
    for user in (2, 3, 8):
        plain = tiny_engine.recommend(user, n=8)
        same = tiny_engine.recommend(user, n=8, diversity=0.0)
        assert same["anime_id"].tolist() == plain["anime_id"].tolist()
        assert same.attrs["diversity"] == 0.0


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "0.5", None, True])
def test_bad_diversity_is_refused(tiny_engine, value):
    with pytest.raises(InvalidParameterError):
        tiny_engine.recommend(2, n=5, diversity=value)


def test_mmr_by_hand():
    import scipy.sparse as sp

    # Items 0 and 1 share a genre; item 2 is alone. Relevance 0 > 1 > 2.
    vectors = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32))
    relevance = np.array([1.0, 0.9, 0.5])
    assert maximal_marginal_relevance(relevance, vectors, 3, 0.0).tolist() == [0, 1, 2]
    # 0.5 * 0.9 - 0.5 * 1 = -0.05 for item 1 against 0.5 * 0.5 - 0 = 0.25 for item 2.
    assert maximal_marginal_relevance(relevance, vectors, 3, 0.5).tolist() == [0, 2, 1]


@pytest.mark.realdata
def test_diversity_varies_the_genres_of_real_lists(bundled_engine):
    genres = genre_matrix(bundled_engine.anime)
    users = bundled_engine.user_ids()[:40]
    by_setting = {}
    for diversity in (0.0, 0.5):
        values = []
        for user in users:
            recs = bundled_engine.recommend(int(user), algorithm="ease", n=10,
                                            diversity=diversity)
            items = bundled_engine.data.items.numbers(recs["anime_id"].to_numpy())
            values.append(intra_list_diversity(items, genres))
        by_setting[diversity] = np.nanmean(values)
    assert by_setting[0.5] > by_setting[0.0] + 0.02
