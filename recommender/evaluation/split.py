"""The leak-free hold-out split: per user, seeded, explicit ratings only.

For every user with at least ``min_ratings`` explicit ratings (1..10), a seeded
random 20% of those rows is held out as *test* and another 20% as
*validation*; the rest, and every -1 row, is *train*. Users with fewer explicit
ratings stay whole in train (they still shape neighbours and popularity, but
are not evaluated). Validation is scored against a model fitted on train; test
against one fitted on train + validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.errors import DataFormatError, InvalidParameterError


@dataclass(frozen=True, eq=False)
class Split:
    """Disjoint train / validation / test rating frames whose union is the input."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    random_state: int

    def frames(self, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(fit_on, held_out)`` for ``target`` "validation" or "test".

        Validation is scored against a model fitted on train; test against one
        fitted on train + validation (the validation rows are then known history).
        """
        if target == "validation":
            return self.train, self.validation
        if target == "test":
            return pd.concat([self.train, self.validation], ignore_index=True), self.test
        raise InvalidParameterError(f"split must be 'validation' or 'test', got {target!r}")


def split_ratings(ratings: pd.DataFrame, *, validation_fraction: float = 0.2,
                  test_fraction: float = 0.2, min_ratings: int = 5,
                  random_state: int = 0) -> Split:
    """Seeded per-user hold-out split of a ``user_id, anime_id, rating`` frame.

    Of each user with at least ``min_ratings`` explicit ratings, ``test_fraction``
    of the explicit rows (at least one) go to test and ``validation_fraction``
    (at least one) to validation; -1 rows always stay in train. The same input
    and ``random_state`` give the same split.
    """
    if not (0 < validation_fraction and 0 < test_fraction
            and validation_fraction + test_fraction < 1):
        raise InvalidParameterError("fractions must be positive and sum to less than 1")
    if ratings.duplicated(["user_id", "anime_id"]).any():
        # A pair in two parts would leak the held-out rating into training.
        raise DataFormatError("ratings hold a (user_id, anime_id) pair more than once")
    users = ratings["user_id"].to_numpy(np.int64)
    explicit = ratings["rating"].to_numpy() > 0
    codes, user_codes = np.unique(users, return_inverse=True)
    counts = np.bincount(user_codes, weights=explicit, minlength=len(codes)).astype(np.int64)
    # Explicit rows first within each user, in a seeded random order.
    keys = np.random.default_rng(random_state).random(len(ratings))
    order = np.lexsort((keys, ~explicit, user_codes))
    starts = np.zeros(len(codes) + 1, dtype=np.int64)
    np.cumsum(np.bincount(user_codes, minlength=len(codes)), out=starts[1:])
    position = np.empty(len(ratings), dtype=np.int64)
    position[order] = np.arange(len(ratings)) - starts[user_codes[order]]
    n = counts[user_codes]
    eligible = explicit & (n >= min_ratings)
    n_test = np.maximum(1, np.floor(n * test_fraction)).astype(np.int64)
    n_val = np.maximum(1, np.floor(n * validation_fraction)).astype(np.int64)
    is_test = eligible & (position < n_test)
    is_val = eligible & ~is_test & (position < n_test + n_val)
    is_train = ~(is_test | is_val)
    return Split(ratings[is_train].reset_index(drop=True),
                 ratings[is_val].reset_index(drop=True),
                 ratings[is_test].reset_index(drop=True), random_state)
