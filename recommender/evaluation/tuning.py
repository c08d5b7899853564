"""Tuning helpers: engines that share fitted state across a search, and headline figures."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from recommender.config import EngineParams
from recommender.core.profiling import PROFILER
from recommender.data.catalog import clean_anime, clean_ratings
from recommender.evaluation.protocol import (
    EngineFactory,
    EvalResult,
    best_weights,
    data_fingerprint,
)
from recommender.models import registry
from recommender.models.user_knn import UserKNN
from recommender.serving.build import build_parts, training_data
from recommender.serving.engine import RecommenderEngine


def reusing_factory() -> EngineFactory:
    """An engine factory that refits user-user CF only when one of its fit settings changes.

    Configurations that differ only in query-time settings (neighbours, votes,
    candidates, ``ef``; see ``UserKNNConfig``) or in other models share one
    fitted projection, hnswlib index and set of user rows. They are shared
    *read-only on purpose*: none of them changes after fit (``ef`` is a
    per-query argument, not index state), and an engine built here has no
    database, so nothing can add users to the shared index. Each engine gets
    its own :class:`UserKNN` object with its own config (:meth:`UserKNN.with_config`).
    Meant for sequential tuning runs; one fitted model is kept at a time.
    """
    fitted: dict = {}

    def factory(anime: pd.DataFrame, ratings: pd.DataFrame,
                params: EngineParams) -> RecommenderEngine:
        config = params.model("user-user")
        key = (data_fingerprint(anime, ratings),
               tuple(sorted(params.fit_key("user-user").items())))
        if key not in fitted:
            fitted.clear()  # one fitted model at a time keeps memory flat
            data = training_data(clean_anime(anime), clean_ratings(ratings))
            knn = UserKNN(config).fit(data)
            fitted[key] = (data, knn, knn.rows(data.ratings))
        data, knn, rows = fitted[key]
        parts = build_parts(data, params, restored={"user-user": knn.with_config(config)},
                            rows=rows)
        return RecommenderEngine(parts)

    return factory


#: ``progress(label, done, total)``: called before each model is fitted, and once at the end.
FitProgress = Callable[[str, int, int], None]


def reporting_factory(progress: FitProgress) -> EngineFactory:
    """An engine factory that reports each model it fits, and reuses its last engine.

    Fitting is most of a first evaluation's time (about 14 s on the bundled
    data), so a progress bar that only counts scored users sits empty through
    it. The models are fitted one by one, in the registry's order, exactly as
    :meth:`RecommenderEngine.from_frames` fits them, so the results (and the
    evaluation cache) are the same. Two evaluations of one split and parameters
    (say the hybrid on user-user, then on EASE) share one fitted engine: it is
    read-only once built.
    """
    last: dict = {}

    def factory(anime: pd.DataFrame, ratings: pd.DataFrame,
                params: EngineParams) -> RecommenderEngine:
        key = (data_fingerprint(anime, ratings), repr(params.as_dict()))
        if key in last:
            return last[key]
        data = training_data(clean_anime(anime), clean_ratings(ratings))
        algorithms = registry.enabled(params.use_models, params.use_ranker)
        fitted: dict = {}
        for done, algorithm in enumerate(algorithms):
            progress(algorithm.label, done, len(algorithms))
            scorer = algorithm.build(params.models[algorithm.name], fitted)
            with PROFILER.stage(f"{algorithm.name} fit", memory=algorithm.persisted):
                fitted[algorithm.name] = scorer.fit(data)
        progress("title index", len(algorithms), len(algorithms))
        last.clear()  # one engine at a time keeps memory flat
        last[key] = RecommenderEngine(build_parts(data, params, restored=fitted))
        return last[key]

    return factory


def headline(result: EvalResult, segment: str = "all", metric: str = "ndcg") -> dict:
    """The figures a tuning table shows: each algorithm alone and the hybrid at its best."""
    table = result.table[result.table["segment"] == segment]
    out = {a: float(table.loc[table["variant"] == a, metric].iloc[0])
           for a in result.spec.algorithms}
    best = best_weights(result.table, metric)
    best = best[best["segment"] == segment].iloc[0]
    out["hybrid best"] = float(best[metric])
    out["best weight"] = float(best["weight"])
    return out
