"""Content results a person would accept: similarity scaled by quality and popularity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.models.content import ContentConfig, quality_prior


def test_the_prior_is_in_range_and_neutral_for_missing_values():
    anime = pd.DataFrame({"rating": [9.0, 4.0, np.nan, 6.5], "members": [10**6, 100, 5000, None]})
    prior = quality_prior(anime)
    assert prior.shape == (4,) and ((prior >= 0) & (prior <= 1)).all()
    assert prior[0] == 1.0 and prior[1] == 0.0
    assert 0 < prior[2] < 1 and 0 < prior[3] < 1
    assert quality_prior(pd.DataFrame({"rating": [np.nan] * 3, "members": [1, 1, 1]})).tolist() \
        == [0.5, 0.5, 0.5]


@pytest.mark.realdata
def test_a_list_of_mecha_titles_gets_well_liked_mecha_first(bundled_engine):
    engine = bundled_engine
    liked = [engine.resolve_title(t) for t in ("code geass", "tengen toppa gurren lagann",
                                              "neon genesis evangelion")]
    top = engine.recommend(liked=liked, algorithm="content", n=5)
    assert top["genre"].str.contains("Mecha").all()
    assert (top["members"] >= 20_000).all() and (top["community_rating"] >= 7.0).all(), \
        top[["name", "members", "community_rating"]]


@pytest.mark.realdata
def test_the_prior_scales_similarity_and_weight_zero_is_similarity_alone(bundled_engine):
    from recommender.core.types import UserProfile
    from recommender.models.content import ContentTfidf

    data = bundled_engine.data
    plain = ContentTfidf(ContentConfig(prior_weight=0.0)).fit(data)
    scaled = ContentTfidf(ContentConfig(prior_weight=1.0)).fit(data)
    user = UserProfile(item_idx=np.array([0, 1]), ratings=np.array([10.0, 9.0], np.float32))
    a, b = plain.score(user).values, scaled.score(user).values
    np.testing.assert_allclose(b, a * quality_prior(data.anime), rtol=1e-5, atol=1e-7)
    assert not np.array_equal(np.argsort(-a)[:10], np.argsort(-b)[:10])
