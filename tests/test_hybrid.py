import numpy as np
import pytest

from recommender.core.scaling import blend, scale_to_unit, top_n


def test_scale_to_unit_keeps_zero_and_order():
    values = np.array([0.0, 2.0, 4.0, 1.0])
    assert scale_to_unit(values).tolist() == [0.0, 0.5, 1.0, 0.25]
    assert scale_to_unit(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_blend_is_the_weighted_sum_of_scaled_scores():
    cf, content = np.array([0.0, 1.0, 2.0]), np.array([4.0, 2.0, 0.0])
    assert np.allclose(blend(cf, content, 0.25), [0.75, 0.5 * 0.75 + 0.25 * 0.5, 0.25])
    with pytest.raises(ValueError):
        blend(cf, content, 1.2)


def test_top_n_breaks_ties_deterministically():
    values = np.array([0.5, 0.9, 0.5, 0.0, 0.5])
    allowed = np.array([True, True, True, True, False])
    tie = np.array([1.0, 0.0, 2.0, 9.0, 9.0])
    assert top_n(values, 3, allowed=allowed, tie_break=tie).tolist() == [1, 2, 0]


@pytest.mark.parametrize("user_id", [2, 3, 10, 17])
def test_weight_one_ranks_as_the_collaborative_part_and_zero_as_content(tiny_engine, user_id):
    # Without a named part the hybrid uses the engine's default one (best on validation).
    n = 8
    uu = tiny_engine.recommend(user_id, algorithm=tiny_engine.default_collaborative, n=n)
    content = tiny_engine.recommend(user_id, algorithm="content", n=n)
    at_one = tiny_engine.recommend(user_id, algorithm="hybrid", weight=1.0, n=n)
    at_zero = tiny_engine.recommend(user_id, algorithm="hybrid", weight=0.0, n=n)
    assert at_one["anime_id"].tolist() == uu["anime_id"].tolist()
    assert at_zero["anime_id"].tolist() == content["anime_id"].tolist()


@pytest.mark.realdata
@pytest.mark.parametrize("user_id", [16, 1000, 30000, 73516])
def test_weight_extremes_on_real_data(bundled_engine, user_id):
    if not bundled_engine.has_user(user_id):
        user_id = int(bundled_engine.user_ids()[user_id % 100])
    for weight, pure in ((1.0, bundled_engine.default_collaborative), (0.0, "content")):
        blended = bundled_engine.recommend(user_id, algorithm="hybrid", weight=weight, n=20)
        alone = bundled_engine.recommend(user_id, algorithm=pure, n=20)
        assert blended["anime_id"].tolist() == alone["anime_id"].tolist()


def test_the_weight_changes_the_hybrid(tiny_engine):
    lists = {tuple(tiny_engine.recommend(liked={1: 10, 12: 9}, algorithm="hybrid",
                                         weight=w, n=6)["anime_id"]) for w in (0.0, 0.5, 1.0)}
    assert len(lists) > 1
