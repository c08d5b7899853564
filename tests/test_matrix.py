import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.core.matrix import IdIndex, build_rating_matrix, matrix_from_frame, similarity_rows


def test_id_index_maps_known_and_unknown_ids():
    index = IdIndex.from_ids([30, 10, 20, 10])
    assert index.ids.tolist() == [10, 20, 30]
    assert index.numbers([20, 5, 30, 31]).tolist() == [1, -1, 2, -1]
    assert IdIndex.from_ids([]).numbers([1]).tolist() == [-1]


def test_id_index_appends_only_larger_ids():
    index = IdIndex.from_ids([1, 2]).appended([7])
    assert index.number(7) == 2
    try:
        index.appended([3])
    except ValueError:
        pass
    else:
        raise AssertionError("appending a smaller id must fail")


def test_rating_matrix_is_sparse_keeps_minus_one_and_last_duplicate():
    ratings = pd.DataFrame({"user_id": [5, 5, 9, 5], "anime_id": [1, 2, 1, 1],
                            "rating": [7, -1, 10, 9]})
    users, items = IdIndex.from_ids(ratings.user_id), IdIndex.from_ids(ratings.anime_id)
    matrix = matrix_from_frame(ratings, users, items)
    assert sp.issparse(matrix) and matrix.format == "csr"
    assert matrix.dtype == np.float32
    assert matrix[0, 0] == 9  # the later rating of (5, 1) wins, not the sum
    assert matrix[0, 1] == -1
    assert matrix[1, 0] == 10
    assert matrix.nnz == 3


def test_similarity_rows_are_unit_or_zero_and_ignore_minus_one():
    matrix = build_rating_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 2, 1]),
                                 np.array([10, 4, -1, -1, 8]), (3, 3))
    rows = similarity_rows(matrix, mean=7.0, damping=5.0)
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
    assert np.allclose(norms[[0, 2]], 1.0, atol=1e-5)
    assert norms[1] == 0  # only -1 rows: no taste, a zero vector
    # A user who rated one title 10 still has a vector thanks to the damped mean.
    assert rows[2, 1] > 0


def test_damped_mean_gives_all_tens_user_a_vector():
    matrix = build_rating_matrix(np.array([0, 0]), np.array([0, 1]), np.array([10, 10]), (1, 2))
    assert similarity_rows(matrix, mean=7.5).nnz == 2
