"""The typed values the evaluation steps pass: a fitted set-up and one variant of the table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from recommender.serving.engine import RecommenderEngine


@dataclass(frozen=True, eq=False)
class EvalSetup:
    """A fitted engine and the users to evaluate, with their relevant held-out items."""

    engine: RecommenderEngine
    spec: Any  # the EvalSpec it was prepared with
    user_ids: np.ndarray          # int64, sorted
    relevant: list[np.ndarray]    # per user: relevant item_idx (int64)
    light: np.ndarray             # bool per user: fewer than LIGHT_USER_RATINGS train ratings
    information: np.ndarray       # self-information per item (training popularity)
    genres: np.ndarray            # items x genres 0/1


@dataclass(frozen=True)
class Variant:
    """One row group of the results table: an algorithm, with a weight for the hybrid."""

    algorithm: str
    weight: float | None = None

    @property
    def label(self) -> str:
        return self.algorithm if self.weight is None else f"{self.algorithm} w={self.weight:.1f}"
