"""The typed values every stage passes, and the small protocols the engine calls.

An algorithm (a *scorer*) is fitted once on :class:`TrainingData` and then
scores a :class:`UserProfile` against the whole catalogue, returning
:class:`Scores`: one float per catalogue position, higher is better, and 0 for
"no evidence". The engine owns everything around that: resolving users,
excluding what they watched, ranking, blending and explaining.

Everything that grows when a user is added (id maps, the rating matrix, the
user-user rows) is one immutable :class:`Snapshot`. A request reads one
snapshot from start to end (:class:`Context`), so a user added meanwhile is
either wholly visible to it or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.core.matrix import IdIndex

#: The data's "like": a rating at or above this is a like (and relevant offline).
LIKE_RATING = 8.0


@dataclass(frozen=True, eq=False)  # eq=False: ndarray fields don't support ==
class TrainingData:
    """The catalogue, id maps and raw rating matrix that scorers are fitted on."""

    anime: pd.DataFrame          # catalogue, one row per item_idx, in item order
    users: IdIndex               # user_id <-> row
    items: IdIndex               # anime_id <-> column (== catalogue order)
    ratings: sp.csr_matrix       # users x items, float32 raw ratings: -1 or 1..10


@dataclass(frozen=True, eq=False)
class UserRows:
    """User-user's view of every user, row for row with the rating matrix.

    ``similarity`` holds the L2-normalised rating rows whose dot product is the
    users' cosine; ``vectors`` their compact projection (what the hnswlib index
    holds); ``postings`` the similarity rows of the users present when the rows
    were indexed, by anime (an inverted index; users added later are not in it).
    """

    similarity: sp.csr_matrix    # users x items, float32
    vectors: np.ndarray          # users x dim, float32
    postings: sp.csc_matrix      # indexed users x items, float32


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One consistent state of the data: replaced whole when users are added, never mutated."""

    data: TrainingData
    rows: UserRows

    @property
    def n_users(self) -> int:
        return self.data.ratings.shape[0]


@dataclass(frozen=True, eq=False)
class Context:
    """What one request scores against: a snapshot, and per-request options.

    ``neighbours`` is ``k`` for scorers that vote by nearest users (None: the
    scorer's own default); scorers that do not use neighbours ignore it.
    """

    snapshot: Snapshot
    neighbours: int | None = None


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

    def score(self, profile: UserProfile, context: Context) -> Scores:
        """Score every catalogue item for ``profile`` (see :class:`Scores`)."""
        ...

    def explain(self, profile: UserProfile, item_idx: np.ndarray, scores: Scores) -> Explanation:
        """Why each item in ``item_idx`` scored as it did (see :class:`Explanation`)."""
        ...


@runtime_checkable
class SimilarItems(Protocol):
    """A scorer that can also say which anime are most like one anime."""

    def similar_items(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``n`` other catalogue positions (int64) and similarities (float32), best first."""
        ...


@runtime_checkable
class Persistent(Protocol):
    """A fitted scorer that saves its learned state and is restored without refitting.

    ``state_dict()`` maps names to arrays (saved as ``.npy``), objects with a
    ``save(path)`` method (saved as files; restored as the verified path) and
    plain JSON values.
    """

    def state_dict(self) -> dict[str, Any]:
        ...

    @classmethod
    def from_state(cls, state: dict[str, Any], data: TrainingData) -> Self:
        ...
