"""The compiled neighbour-search loops agree with their plain NumPy/SciPy definitions."""

import numpy as np
import scipy.sparse as sp

from recommender.models.postings import posting_scores, row_dots
from recommender.models.user_knn import UserKNN


def _matrix(seed=0, n_users=300, n_items=80, signed=False):
    rng = np.random.default_rng(seed)
    m = sp.random(n_users, n_items, density=0.08, random_state=seed, format="csr",
                  dtype=np.float32)
    if signed:
        m.data = (m.data - 0.5).astype(np.float32)
    m.data[rng.random(m.nnz) < 0.01] = 0.0
    return m


def test_an_unlimited_budget_gives_every_partial_dot_product():
    sim = _matrix(signed=True)
    postings = sim.tocsc()
    query = sim[7]
    users, partial = posting_scores(postings, query.indices, query.data, budget=10**9)
    dense = np.zeros(sim.shape[1], np.float32)
    dense[query.indices] = query.data
    expected = sim @ dense
    users, first = np.unique(users, return_index=True)  # a sum back at zero may repeat a user
    np.testing.assert_allclose(expected[users], partial[first], rtol=1e-5, atol=1e-6)
    # Every user not met shares no anime with the query.
    met = np.zeros(sim.shape[0], bool)
    met[users] = True
    overlap = np.asarray((sim[:, query.indices] != 0).sum(axis=1)).ravel()
    assert not (overlap[~met] > 0).any()


def test_a_budget_reads_the_rarest_anime_first_and_always_one():
    sim = _matrix(seed=1)
    postings = sim.tocsc()
    query = sim[3]
    lengths = np.diff(postings.indptr)[query.indices]
    rarest = query.indices[np.argmin(lengths)]
    users, _ = posting_scores(postings, query.indices, query.data, budget=0)
    expected = postings.indices[postings.indptr[rarest]:postings.indptr[rarest + 1]]
    assert set(users.tolist()) == set(expected.tolist())
    empty_users, empty_scores = posting_scores(postings, np.empty(0, np.int32),
                                               np.empty(0, np.float32), budget=100)
    assert len(empty_users) == len(empty_scores) == 0


def test_row_dots_equal_the_sparse_product_of_the_rows():
    sim = _matrix(seed=2)
    dense = np.random.default_rng(2).random(sim.shape[1]).astype(np.float32)
    rows = np.array([5, 0, 299, 5, 17])
    np.testing.assert_allclose(row_dots(sim, rows, dense), sim[rows] @ dense, rtol=1e-5)


def test_the_automatic_budget_is_a_share_of_the_ratings_with_a_floor():
    knn = UserKNN(posting_share=0.04, posting_floor=1000)
    assert knn.posting_budget(10_000) == 1000
    assert knn.posting_budget(1_000_000) == 40_000
    assert UserKNN(posting_budget=0).posting_budget(10**6) == 0
    assert UserKNN(posting_budget=500).posting_budget(10**6) == 500
