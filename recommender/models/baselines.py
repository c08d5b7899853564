"""Non-personalised scorers: popularity (also the last fallback) and random."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Self

import numpy as np

from recommender.core.types import (
    LIKE_RATING,
    Context,
    Explanation,
    Scores,
    TrainingData,
    UserProfile,
)


@dataclass(frozen=True)
class PopularityConfig:
    """A rating at or above ``like_threshold`` counts as a like."""

    like_threshold: float = LIKE_RATING


class Popularity:
    """Scores items by how many users liked them (rating >= ``like_threshold``).

    Ties (and items nobody liked) are ordered by how many users watched them,
    then by the catalogue's member count (MyAnimeList's own popularity), so a
    new catalogue without ratings still has a popularity order. Fitted on the
    training ratings only; the scores are the same for every profile, which is
    why the engine also breaks every other algorithm's ties with them.
    """

    name = "popularity"

    def __init__(self, config: PopularityConfig | None = None, **overrides):
        self.config = replace(config or PopularityConfig(), **overrides)

    def fit(self, data: TrainingData) -> Self:
        matrix = data.ratings
        n_items = matrix.shape[1]
        # Column counts straight from the CSR's column indices (no CSC copy).
        likes = np.bincount(matrix.indices[matrix.data >= self.config.like_threshold],
                            minlength=n_items)
        watched = np.bincount(matrix.indices, minlength=n_items).astype(np.float64)
        members = (data.anime["members"].to_numpy(np.float64) if "members" in data.anime
                   else np.zeros(n_items))
        members = np.clip(members, 0, None) / (max(members.max(initial=0.0), 0.0) + 1.0)
        values = likes + (watched + members) / (watched.max(initial=0.0) + 2.0)
        self.likes_ = likes.astype(np.int64)
        self.watched_ = watched.astype(np.int64)
        self.members_ = data.anime["members"].to_numpy(np.int64) if "members" in data.anime \
            else np.zeros(n_items, np.int64)
        self.values_ = (values / max(values.max(initial=0.0), 1e-12)).astype(np.float32)
        return self

    def score(self, profile: UserProfile, context: Context | None = None) -> Scores:
        return Scores(self.values_, self.name)

    def explain(self, profile: UserProfile, item_idx: np.ndarray, scores: Scores) -> Explanation:
        return Explanation(
            [f"popular: liked by {self.likes_[i]:,} users" if self.likes_[i]
             else f"popular on MyAnimeList: {self.members_[i]:,} members" for i in item_idx], {})


@dataclass(frozen=True)
class RandomConfig:
    random_state: int = 0


class RandomScorer:
    """Uniform random scores over items anyone rated: the floor any model must beat."""

    name = "random"

    def __init__(self, config: RandomConfig | None = None, **overrides):
        self.config = replace(config or RandomConfig(), **overrides)

    def fit(self, data: TrainingData) -> Self:
        self.rated_ = np.bincount(data.ratings.indices, minlength=data.ratings.shape[1]) > 0
        return self

    def score(self, profile: UserProfile, context: Context | None = None) -> Scores:
        seed = self.config.random_state + (0 if profile.user_id is None else int(profile.user_id))
        values = np.random.default_rng(seed).random(len(self.rated_)).astype(np.float32)
        return Scores(np.where(self.rated_, values + 1e-3, 0).astype(np.float32), self.name)

    def explain(self, profile: UserProfile, item_idx: np.ndarray, scores: Scores) -> Explanation:
        return Explanation(["picked at random"] * len(item_idx), {})
