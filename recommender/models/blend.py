"""A "blend": several fitted scorers combined by a weighted sum of their unit-scaled scores.

Each part's scores are divided by their maximum for the user (as the hybrid
does), so every part runs from 0 to 1 and 0 still means "no evidence"; the blend
is ``sum(w_k * part_k)``. The default weights (:class:`BlendConfig`) were chosen
by a grid on the validation split: EASE with a small share of content; adding
user-user or MF did not help there (README, "Learned models").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Self

import numpy as np

from recommender.core.params import query_field
from recommender.core.scaling import scale_to_unit
from recommender.core.types import (
    Context,
    Explanation,
    Scorer,
    Scores,
    TrainingData,
    UserProfile,
)
from recommender.errors import ConfigurationError


def parse_weights(text: str) -> dict[str, float]:
    """``"ease:1,user-user:0.5"`` -> ``{"ease": 1.0, "user-user": 0.5}`` (zero weights dropped)."""
    weights: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = item.rpartition(":")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name.strip() or not weight >= 0:
            raise ConfigurationError(f"blend weight {item!r} is not 'name:weight' with weight >= 0")
        if weight > 0:
            weights[name.strip()] = weight
    if not weights:
        raise ConfigurationError(f"blend weights {text!r} name no algorithm with weight > 0")
    return weights


@dataclass(frozen=True)
class BlendConfig:
    """``"name:weight,..."`` over fitted algorithms, chosen on validation."""

    weights: str = query_field("ease:1.0,content:0.05")

    def __post_init__(self) -> None:
        parse_weights(self.weights)  # a malformed setting fails here, at start-up

    @property
    def parts(self) -> dict[str, float]:
        return parse_weights(self.weights)


class Blend:
    """Weighted sum of unit-scaled scores of already fitted scorers."""

    name = "blend"

    def __init__(self, parts: Mapping[str, Scorer], config: BlendConfig | None = None,
                 **overrides):
        self.config = replace(config or BlendConfig(), **overrides)
        weights = self.config.parts
        missing = sorted(set(weights) - set(parts))
        if missing:
            raise ConfigurationError(f"blend weights name unknown algorithms: {missing}")
        self.parts = {name: parts[name] for name in weights}
        self.weights = weights

    def fit(self, data: TrainingData) -> Self:
        """Nothing to learn: the parts are fitted already."""
        return self

    def score(self, profile: UserProfile, context: Context) -> Scores:
        """``sum(w_k * scale_to_unit(part_k))`` over the parts."""
        parts = {name: scorer.score(profile, context) for name, scorer in self.parts.items()}
        scaled = {name: self.weights[name] * scale_to_unit(s.values) for name, s in parts.items()}
        values = np.sum(list(scaled.values()), axis=0)
        return Scores(values.astype(np.float32), self.name,
                      details={f"{name}_share": v.astype(np.float32) for name, v in scaled.items()},
                      context={"parts": parts, "scaled": scaled})

    def explain(self, profile: UserProfile, item_idx: np.ndarray, scores: Scores) -> Explanation:
        """Each item is explained by the part that gave it the largest share of its score."""
        scaled: dict[str, np.ndarray] = scores.context["scaled"]
        parts: dict[str, Scores] = scores.context["parts"]
        names = list(scaled)
        shares = np.array([scaled[name][item_idx] for name in names])
        lead = np.argmax(shares, axis=0) if len(item_idx) else np.empty(0, np.int64)
        reasons = [""] * len(item_idx)
        columns: dict[str, list] = {"because_items": [[] for _ in item_idx],
                                    "led_by": [names[k] for k in lead]}
        for k, name in enumerate(names):
            rows = np.flatnonzero(lead == k)
            if not len(rows):
                continue
            explained = self.parts[name].explain(profile, item_idx[rows], parts[name])
            because = explained.columns.get("because_items")
            single = explained.columns.get("because_idx")
            for j, row in enumerate(rows):
                reasons[row] = explained.reasons[j]
                if because is not None:
                    columns["because_items"][row] = list(because[j])
                elif single is not None and single[j] is not None:
                    columns["because_items"][row] = [int(single[j])]
        return Explanation(reasons, columns)
