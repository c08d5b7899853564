"""The learned two-stage ranker ("ranker"): candidates from four models, re-ranked by LambdaRank.

Stage 1 takes the union of each user's best candidates from EASE, ALS, user-user
and content (about 200 in all; :func:`features.candidates`), recording which
model proposed each and at what rank. Stage 2 is a LightGBM LambdaRank model
over features known at recommendation time (:mod:`recommender.models.features`).

Training never sees a rating it will be judged on: :meth:`LearnedRanker.fit`
carves its own hold-out from the ratings it is given (a seeded 20% of each
user's explicit ratings), refits the four stage-1 models on the rest, and
learns to put the held-out titles rated 8 or more first. Offline evaluation
hands it the training side of its split only, so the test hold-out reaches
neither the stage-1 models nor the ranker. At serving time the candidates and
features come from the engine's own stage-1 models, fitted on all ratings; a
what-if list goes through the same path.

Reasons come from LightGBM's per-feature contributions (``pred_contrib``),
grouped into a few families and put into words (:mod:`ranker_reasons`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self

import numpy as np

from recommender.core.params import query_field
from recommender.core.types import (
    LIKE_RATING,
    Context,
    Explanation,
    Scorer,
    Scores,
    Snapshot,
    TrainingData,
    UserProfile,
)
from recommender.errors import ConfigurationError
from recommender.models import features as F
from recommender.models.ranker_reasons import reasons_from_contributions


@dataclass(frozen=True)
class RankerConfig:
    """Candidate counts and LightGBM settings, chosen on validation (README, "Evaluation")."""

    #: Candidates each stage-1 model proposes (their union is about 200).
    ease_candidates: int = 60
    mf_candidates: int = 60
    user_user_candidates: int = 60
    content_candidates: int = 30
    #: Share of each user's explicit training ratings held out to train the ranker on.
    holdout: float = 0.2
    # Validation NDCG@10 / EASE (1000 users, seed 0; README "The learned ranker"): one
    # fold of 2,000 users with 300 trees at 0.05, 0.987x; 150 trees at 0.1, 0.997x (and
    # half the latency); 6,000 users (every user with a held-out like), 1.019x; two
    # folds, 1.054x; three or four folds, 1.056x at 1.4-1.7x the fit; graded labels,
    # 1.015x (one fold) and 1.012x (two).
    #: Users the ranker is trained on per fold (a seeded sample of those with a held-out like).
    train_users: int = 6000
    #: Hold-outs (each with its own seed and its own refitted stage-1 models) stacked
    #: into the training set: more (user, candidate) rows for the same ratings.
    folds: int = 2
    #: Labels 1/2/3 for held-out ratings 8/9/10 instead of 1 for every like.
    graded: bool = False
    trees: int = 150
    learning_rate: float = 0.1
    leaves: int = 31
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    random_state: int = 0
    #: LightGBM threads while training (prediction uses one).
    threads: int = query_field(2)

    def __post_init__(self) -> None:
        if not 0 < self.holdout < 1:
            raise ConfigurationError(f"ranker holdout must be in (0, 1), got {self.holdout}")
        if min(self.ease_candidates, self.mf_candidates, self.user_user_candidates,
               self.content_candidates, self.train_users, self.trees, self.folds) < 1:
            raise ConfigurationError("ranker candidate counts, train_users, trees and folds "
                                     "must be >= 1")

    @property
    def per_model(self) -> dict[str, int]:
        return {"ease": self.ease_candidates, "mf": self.mf_candidates,
                "user-user": self.user_user_candidates, "content": self.content_candidates}


class _BoosterFile:
    """The model cache saves objects with ``save(path)``: a LightGBM booster as its text file."""

    def __init__(self, booster):
        self.booster = booster

    def save(self, path: str | Path) -> None:
        self.booster.save_model(str(path))


class LearnedRanker:
    """A "ranker" scorer over fitted stage-1 models (see the module docstring)."""

    name = "ranker"

    def __init__(self, parts: Mapping[str, Scorer] | None = None,
                 config: RankerConfig | None = None, **overrides):
        self.config = replace(config or RankerConfig(), **overrides)
        self.parts: dict[str, Scorer] = {}
        if parts is not None:
            self.bind(parts)

    def bind(self, parts: Mapping[str, Scorer]) -> Self:
        """Use these fitted stage-1 models at serving time; returns self."""
        missing = [m for m in F.MODELS if m not in parts]
        if missing:
            raise ConfigurationError(f"the ranker needs the models {', '.join(missing)}")
        self.parts = {m: parts[m] for m in F.MODELS}
        return self

    # -- fitting ----------------------------------------------------------------------
    def fit(self, data: TrainingData) -> Self:
        """Learn the LambdaRank model on a hold-out carved from ``data``; returns self."""
        import lightgbm as lgb

        c = self.config
        blocks, labels, groups = [], [], []
        for fold in range(c.folds):
            rows, ys, sizes = self.training_rows(data, c.random_state + fold)
            blocks += rows
            labels += ys
            groups += sizes
        self.booster_ = self._train(lgb, blocks, labels, groups)
        self.trained_users_ = len(groups)
        self._adopt(data)
        return self

    def training_rows(self, data: TrainingData, seed: int,
                      ) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
        """One hold-out's training set (seeded by ``seed``), a query group per user.

        Returns the feature rows of each user's candidates, their labels and the
        group sizes; users whose candidates are all liked or none liked are left
        out (LambdaRank learns nothing from them).
        """
        c = self.config
        blocks: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        groups: list[int] = []
        kept, held = F.holdout(data.ratings, c.holdout, random_state=seed)
        inner = TrainingData(data.anime, data.users, data.items, kept)
        stage1: dict[str, Scorer] = {}
        for name, model in self.parts.items():
            # Content reads the catalogue only; the others learn from the kept ratings.
            stage1[name] = model if name == "content" else type(model)(model.config).fit(inner)
        knn = stage1["user-user"]
        context = Context(Snapshot(inner, knn.rows(kept)))
        table = F.item_table(inner)
        liked = held.copy()
        liked.data = np.where(liked.data >= LIKE_RATING,
                              # Graded: 8, 9 and 10 are gains 1, 2 and 3; else every like is 1.
                              liked.data - LIKE_RATING + 1 if c.graded else 1,
                              0).astype(np.float32)
        liked.eliminate_zeros()
        users = np.flatnonzero(np.diff(liked.indptr) > 0)
        rng = np.random.default_rng(seed)
        if len(users) > c.train_users:
            users = np.sort(rng.choice(users, c.train_users, replace=False))
        for u in users:
            profile = _row_profile(kept, u, data)
            items, x = self._features(profile, context, stage1, table)
            start, end = liked.indptr[u], liked.indptr[u + 1]
            gain = dict(zip(liked.indices[start:end].tolist(), liked.data[start:end].tolist()))
            y = np.array([gain.get(int(i), 0.0) for i in items], dtype=np.float32)
            if y.any() and not y.all():
                blocks.append(x)
                labels.append(y)
                groups.append(len(items))
        return blocks, labels, groups

    def _train(self, lgb, blocks, labels, groups):
        c = self.config
        params = {"objective": "lambdarank", "learning_rate": c.learning_rate,
                  "num_leaves": c.leaves, "min_child_samples": c.min_child_samples,
                  "feature_fraction": c.feature_fraction, "bagging_seed": c.random_state,
                  "feature_fraction_seed": c.random_state, "seed": c.random_state,
                  "lambdarank_truncation_level": 20, "eval_at": [10],
                  "num_threads": c.threads, "verbose": -1, "deterministic": True}
        if not groups:  # too little data to learn from: a constant model
            x = np.zeros((2, len(F.FEATURES)), np.float32)
            dataset = lgb.Dataset(x, np.array([1.0, 0.0]), group=[2],
                                  feature_name=list(F.FEATURES), free_raw_data=True)
            return lgb.train({**params, "min_child_samples": 1, "min_data_in_bin": 1},
                             dataset, num_boost_round=1)
        dataset = lgb.Dataset(np.vstack(blocks), np.concatenate(labels), group=groups,
                              feature_name=list(F.FEATURES),
                              categorical_feature=list(F.CATEGORICAL), free_raw_data=True)
        return lgb.train(params, dataset, num_boost_round=c.trees)

    def _adopt(self, data: TrainingData) -> None:
        self.table_ = F.item_table(data)
        self.names_ = data.anime["name"].to_numpy()

    # -- persistence ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The booster (as LightGBM's text file) and the feature names it was trained on."""
        return {"booster": _BoosterFile(self.booster_), "features": list(F.FEATURES)}

    @classmethod
    def from_state(cls, state: dict, data: TrainingData,
                   config: RankerConfig | None = None) -> LearnedRanker:
        """A fitted ranker from :meth:`state_dict` output; :meth:`bind` gives it its parts."""
        import lightgbm as lgb

        if list(state.get("features", [])) != list(F.FEATURES):
            raise ValueError("the saved ranker was trained on other features")
        scorer = cls(None, config)
        booster = state["booster"]
        if isinstance(booster, _BoosterFile):
            booster = booster.booster
        else:
            booster = lgb.Booster(model_file=str(booster))
        scorer.booster_ = booster
        scorer.trained_users_ = None
        scorer._adopt(data)
        return scorer

    # -- scoring ----------------------------------------------------------------------
    def _features(self, profile: UserProfile, context: Context, stage1: Mapping[str, Scorer],
                  table: F.ItemTable) -> tuple[np.ndarray, np.ndarray]:
        parts = {name: model.score(profile, context) for name, model in stage1.items()}
        return self._candidate_features(profile, parts, table)

    def _candidate_features(self, profile: UserProfile, parts: Mapping[str, Scores],
                            table: F.ItemTable) -> tuple[np.ndarray, np.ndarray]:
        allowed = np.ones(len(table.watchers), dtype=bool)
        allowed[profile.item_idx] = False
        items, ranks = F.candidates({n: s.values for n, s in parts.items()}, allowed,
                                    self.config.per_model)
        neighbours = parts["user-user"].context.get("neighbours")
        k = len(neighbours.user_idx) if neighbours is not None else 0
        return items, F.feature_matrix(profile, items, ranks, parts, table, k)

    def score(self, profile: UserProfile, context: Context) -> Scores:
        """Sigmoid of the LambdaRank score for the candidates; every other item scores 0."""
        if not self.parts:
            raise ConfigurationError("the ranker has no stage-1 models (bind them first)")
        parts = {name: model.score(profile, context) for name, model in self.parts.items()}
        items, x = self._candidate_features(profile, parts, self.table_)
        values = np.zeros(len(self.table_.watchers), dtype=np.float32)
        if len(items):
            raw = self.booster_.predict(x, num_threads=1)
            values[items] = (1.0 / (1.0 + np.exp(-raw))).astype(np.float32) + 1e-6
        return Scores(values, self.name,
                      context={"items": items, "features": x, "parts": parts})

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """LightGBM's per-feature contributions for feature rows (rows x (features + 1))."""
        return np.asarray(self.booster_.predict(x, pred_contrib=True, num_threads=1))

    def feature_importance(self) -> dict[str, float]:
        """Total gain of each feature over the trees, largest first."""
        gain = self.booster_.feature_importance(importance_type="gain")
        pairs = sorted(zip(self.booster_.feature_name(), gain), key=lambda p: -p[1])
        return {name: float(g) for name, g in pairs}

    def explain(self, profile: UserProfile, item_idx: np.ndarray, scores: Scores) -> Explanation:
        """Reasons from the contributions of each item's features (``ranker_reasons``)."""
        item_idx = np.asarray(item_idx, dtype=np.int64)
        items = scores.context.get("items", np.empty(0, np.int64))
        x = scores.context.get("features")
        rows = np.searchsorted(items, item_idx) if len(items) else np.zeros(len(item_idx), int)
        rows = np.clip(rows, 0, max(len(items) - 1, 0))
        known = (len(items) > 0) & (items[rows] == item_idx) if len(items) else \
            np.zeros(len(item_idx), bool)
        if not len(item_idx) or not known.any():
            return Explanation(["fits your overall taste"] * len(item_idx),
                               {"contributions": [{} for _ in item_idx]})
        chosen = x[rows[known]]
        contrib = self.contributions(chosen)
        texts, families = reasons_from_contributions(
            chosen, contrib, item_idx[known], profile, scores.context["parts"], self.parts,
            self.table_, self.names_)
        reasons = ["fits your overall taste"] * len(item_idx)
        shares: list[dict] = [{} for _ in item_idx]
        for j, row in enumerate(np.flatnonzero(known)):
            reasons[row], shares[row] = texts[j], families[j]
        return Explanation(reasons, {"contributions": shares})


def _row_profile(matrix, u: int, data: TrainingData) -> UserProfile:
    start, end = matrix.indptr[u], matrix.indptr[u + 1]
    return UserProfile(matrix.indices[start:end].astype(np.int64),
                       matrix.data[start:end].astype(np.float32), int(u),
                       int(data.users.ids[u]))
