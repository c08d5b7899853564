"""What an engine serves from one set of fitted models: the models, their ranker, the frames.

They are built together and replaced together (``RecommenderEngine.add_models``
after a background fit), so a request that reads the engine's ``Served`` once
ranks and explains with one consistent set of models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.core.types import Scorer
from recommender.models import registry
from recommender.models.registry import HYBRID
from recommender.serving.frames import ResultFrames
from recommender.serving.ranking import Ranker


@dataclass(frozen=True, eq=False)
class Served:
    """Fitted models by name (registry order), the ranker over them and the result frames."""

    models: Mapping[str, Scorer]
    ranker: Ranker
    frames: ResultFrames
    anime: pd.DataFrame
    tie_break: np.ndarray
    adult: np.ndarray
    include_adult: bool
    diversity: sp.csr_matrix

    @classmethod
    def build(cls, models: Mapping[str, Scorer], anime: pd.DataFrame, tie_break: np.ndarray,
              adult: np.ndarray, include_adult: bool, diversity: sp.csr_matrix) -> Served:
        order = [a.name for a in registry.ALGORITHMS if a.name in models]
        ordered = {name: models[name] for name in order}
        ranker = Ranker(ordered, tie_break, adult, include_adult, diversity)
        return cls(ordered, ranker, ResultFrames(anime, ordered), anime, tie_break, adult,
                   include_adult, diversity)

    def with_models(self, models: Mapping[str, Scorer]) -> Served:
        """A new ``Served`` with ``models`` added (or replacing those of the same name)."""
        return Served.build({**self.models, **models}, self.anime, self.tie_break, self.adult,
                            self.include_adult, self.diversity)

    @property
    def algorithms(self) -> tuple[str, ...]:
        """Names ``recommend(algorithm=...)`` accepts, "random" last."""
        names = [n for n in self.models if n != "random"]
        return (*names, HYBRID, *(["random"] if "random" in self.models else []))

    @property
    def similar_models(self) -> tuple[str, ...]:
        return tuple(n for n in self.models if registry.get(n).similar_items)
