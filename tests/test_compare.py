"""Comparisons against EASE: paired bootstrap intervals, item segments, the diversity curve."""

import numpy as np
import pytest

from conftest import TINY_PARAMS, two_taste_groups
from recommender.evaluation import EvalSpec, Variant, prepare, recommend_lists
from recommender.evaluation.compare import (
    COMPARE_SEGMENTS,
    compare_to,
    diversity_curve,
    head_items,
    paired_ratio_ci,
)


def test_paired_ratio_ci_by_hand():
    base = np.array([0.2, 0.4, 0.6, 0.8])
    ratio, low, high = paired_ratio_ci(base * 1.1, base)
    # Every resample of a constant ratio is that ratio: the interval is a point.
    assert ratio == pytest.approx(1.1) and low == pytest.approx(1.1) and high == pytest.approx(1.1)
    rng = np.random.default_rng(0)
    noisy = base * rng.uniform(0.5, 1.5, size=4)
    ratio, low, high = paired_ratio_ci(noisy, base)
    assert low < ratio < high
    assert np.isnan(paired_ratio_ci(np.array([]), np.array([]))[0])


@pytest.fixture(scope="module")
def setup():
    anime, ratings = two_taste_groups()
    return prepare(anime, ratings, EvalSpec(n_users=0, params=TINY_PARAMS,
                                            algorithms=("ease", "ranker", "content")))


def test_head_items_hold_half_the_views(setup):
    head = head_items(setup)
    views = np.bincount(setup.engine.data.ratings.indices,
                        minlength=setup.engine.data.ratings.shape[1])
    assert views[head].sum() >= 0.5 * views.sum()
    assert views[head].min() >= views[~head].max()


def test_compare_to_ease_has_every_segment_and_ease_is_one(setup):
    lists = recommend_lists(setup, [Variant("ease"), Variant("ranker"), Variant("content")])
    table = compare_to(setup, lists)
    assert set(table["segment"]) == set(COMPARE_SEGMENTS)
    ease = table[table["variant"] == "ease"]
    assert np.allclose(ease["ratio"].dropna(), 1.0)
    assert (table["low"].dropna() <= table["ratio"].dropna() + 1e-12).all()


def test_diversity_curve_starts_at_the_plain_ranking(setup):
    curve = diversity_curve(setup, "ease", (0.0, 0.5, 1.0))
    assert curve["diversity"].tolist() == [0.0, 0.5, 1.0]
    lists = recommend_lists(setup, [Variant("ease")])[Variant("ease")]
    from recommender.evaluation import ndcg_at_k

    plain = np.mean([ndcg_at_k(r, rel, setup.spec.k) for r, rel in zip(lists, setup.relevant)])
    assert curve["ndcg"].iloc[0] == pytest.approx(plain)
    assert {"ndcg", "recall", "coverage", "intra_list_diversity"} <= set(curve.columns)
