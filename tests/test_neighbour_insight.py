"""Tie-aware neighbour recall and the neighbour explanations, as pure functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recommender.evaluation.metrics import tie_aware_recall, tied_at_cutoff
from recommender.models import neighbour_insight as insight


def test_a_tie_at_the_cutoff_counts_as_a_hit():
    # Exact top-3: users 1, 2, 3; user 4 is exactly as similar as user 3.
    exact_ids, exact_sims = [1, 2, 3], [0.9, 0.5, 0.39317]
    found_ids, found_sims = [1, 2, 4], [0.9, 0.5, 0.39317]
    assert tie_aware_recall(found_ids, found_sims, exact_ids, exact_sims) == 1.0
    assert tied_at_cutoff(found_ids, found_sims, exact_ids, exact_sims).tolist() == [4]
    # Plain recall would say 2/3; a found user below the cutoff is still a miss.
    assert tie_aware_recall([1, 2, 5], [0.9, 0.5, 0.39], exact_ids, exact_sims) == \
        pytest.approx(2 / 3)
    # Ties never lift recall above 1, and an empty reference is fully recalled.
    assert tie_aware_recall([1, 2, 3, 4], [0.9, 0.5, 0.39317, 0.39317], exact_ids,
                            exact_sims) == 1.0
    assert tie_aware_recall([], [], [], []) == 1.0
    # float32 cosines of one pair can differ in the last bits: still a tie.
    assert tie_aware_recall([1, 2, 4], [0.9, 0.5, np.float32(0.39317) - 1e-8], exact_ids,
                            exact_sims) == 1.0


def test_benchmark_recall_uses_the_same_rule(tiny_frames):
    """measure.neighbour_recall (what the benchmarks report) on data where every user has
    a twin with the same ratings. The exact top-k keeps one twin of a tied pair
    arbitrarily; here the reference keeps the other one than the index did."""
    from conftest import TINY_PARAMS
    from recommender import RecommenderEngine
    from recommender.models.user_knn import Neighbours
    from recommender.serving.requests import user_profile
    from recommender.tools.measure import neighbour_recall

    anime, ratings = tiny_frames
    twins = pd.concat([ratings, ratings.assign(user_id=ratings["user_id"] + 100)])
    engine = RecommenderEngine.from_frames(anime, twins, TINY_PARAMS)
    knn, snapshot, users = engine.knn, engine.snapshot, engine.data.users
    n, k = len(engine.user_ids()), 6  # own twin first, then pairs: the 6th splits one
    reference, swapped = {}, 0
    for user in engine.user_ids()[:10]:
        exact = knn.neighbours(user_profile(snapshot, int(user)), snapshot, k, exact=True)
        ids = users.ids[exact.user_idx].copy()
        last = int(ids[-1])
        twin = last + 100 if last < 100 else last - 100
        if twin not in ids and twin != user:
            ids[-1], swapped = twin, swapped + 1
        reference[int(user)] = Neighbours(users.numbers(ids), exact.similarity)
    assert swapped > 0
    result = neighbour_recall(knn, snapshot, engine.user_ids()[:10], k=k, n_candidates=n,
                              exact_cache=reference)
    assert result["recall"] == 1.0  # plain recall: 1 - swapped / (10 * k)


def test_why_similar_weighs_rarity_and_agreement():
    # Items: 0 watched by everyone, 1 rare, 2 rare but rated 10 against 5.
    watchers = np.array([100, 2, 2, 50])
    mine = sp.csr_matrix(np.array([[9, 9, 10, 0]], dtype=np.float32))
    theirs = sp.csr_matrix(np.array([[9, 9, 5, 7], [-1, 0, 0, 0]], dtype=np.float32))
    first, second = insight.why_similar(mine, theirs, watchers, n_users=100, top=3)
    assert first.item_idx.tolist() == [1, 2, 0]  # rare and agreed first; the popular one last
    assert first.weight[0] > first.weight[1] > first.weight[2] == 0.0
    assert first.mine.tolist() == [9, 10, 9] and first.theirs.tolist() == [9, 5, 9]
    assert second.item_idx.tolist() == [0]  # only item 0 is shared (watched, not rated)
    assert insight.agreement(np.array([9, -1]), np.array([9, 8])).tolist() == [1.0, 0.5]


def test_thin_overlap_and_genre_shares():
    assert insight.thin_overlap(np.array([2, 3, 4, 40])).tolist() == [True, True, False, False]
    genres = np.array([[1, 0], [1, 1], [0, 1]], dtype=float)
    assert insight.liked_genre_shares(np.array([0, 1, 1, 2]), genres).tolist() == [0.75, 0.75]
    assert insight.liked_genre_shares(np.array([], dtype=np.int64), genres).tolist() == [0, 0]
