"""The one interface every algorithm implements, and the typed values it passes.

An algorithm (a *scorer*) is fitted once on :class:`TrainingData` and then
scores a :class:`UserProfile` against the whole catalogue, returning
:class:`Scores`: one float per catalogue position, higher is better, and 0 for
"no evidence". The engine owns everything around that: resolving users,
excluding what they watched, ranking, blending and explaining. A new algorithm
plugs in by implementing :class:`Scorer` and registering with the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.core.matrix import IdIndex


@dataclass(frozen=True, eq=False)  # eq=False: ndarray fields don't support ==
class TrainingData:
    """What scorers are fitted on: the catalogue, id maps and the raw rating matrix."""

    anime: pd.DataFrame          # catalogue, one row per item_idx, in item order
    users: IdIndex               # user_id <-> row
    items: IdIndex               # anime_id <-> column (== catalogue order)
    ratings: sp.csr_matrix       # users x items, float32 raw ratings: -1 or 1..10


@dataclass(frozen=True, eq=False)
class UserProfile:
    """A user as the scorers see them: what they watched and how they rated it.

    ``ratings`` holds 1..10, or -1 for "watched, not rated". ``user_idx`` is the
    matrix row of a known user, or None for a "what-if" user built from a list,
    who is in no index and no database.
    """

    item_idx: np.ndarray  # int64, unique catalogue positions
    ratings: np.ndarray   # float32, same length
    user_idx: int | None = None
    user_id: int | None = None

    def row(self, n_items: int) -> sp.csr_matrix:
        """This user as a 1 x n_items CSR of raw ratings."""
        order = np.argsort(self.item_idx)
        return sp.csr_matrix(
            (self.ratings[order].astype(np.float32), self.item_idx[order].astype(np.int32),
             np.array([0, len(order)], dtype=np.int32)),
            shape=(1, n_items),
        )

    def liked(self, threshold: float) -> np.ndarray:
        """Catalogue positions the user rated at least ``threshold``."""
        return self.item_idx[self.ratings >= threshold]


@dataclass(frozen=True, eq=False)
class Scores:
    """One algorithm's scores for one user over the whole catalogue.

    ``values`` is float32 of shape (n_items,): higher is better, 0 means no
    evidence (such items are never recommended by that algorithm alone).
    ``details`` carries per-item arrays the engine uses to explain the top rows
    (e.g. neighbour support), and ``context`` anything per-user (e.g. the
    neighbours found).
    """

    values: np.ndarray
    method: str
    details: dict[str, np.ndarray] = field(default_factory=dict)
    context: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Explanation:
    """Reasons for a few items: one sentence each, plus per-item columns for tables."""

    reasons: list[str]
    columns: dict[str, list] = field(default_factory=dict)


@runtime_checkable
class Scorer(Protocol):
    """A recommendation algorithm: fitted once, then scores any user profile."""

    name: str

    def fit(self, data: TrainingData) -> Self:
        """Learn from the training data; returns self."""
        ...

    def score(self, profile: UserProfile) -> Scores:
        """Score every catalogue item for ``profile`` (see :class:`Scores`)."""
        ...

    def explain(self, profile: UserProfile, item_idx: np.ndarray, scores: Scores) -> Explanation:
        """Why each item in ``item_idx`` scored as it did (see :class:`Explanation`)."""
        ...


@dataclass(frozen=True, eq=False)
class Recommendations:
    """Ranked anime for one user, best first."""

    item_idx: np.ndarray   # int64 catalogue positions
    scores: np.ndarray     # float32, higher is better
    method: str            # the algorithm that actually produced the ranking
    requested: str         # the algorithm that was asked for
    reasons: list[str]
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def fallback(self) -> bool:
        return self.method != self.requested
