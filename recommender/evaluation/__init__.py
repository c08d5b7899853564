"""Offline evaluation: the hold-out split, ranking metrics, the protocol and tuning helpers."""

from recommender.evaluation.diversity import DIVERSITIES, DiversityCurve, evaluate_diversity
from recommender.evaluation.metrics import (
    average_precision_at_k,
    catalogue_coverage,
    genre_matrix,
    hit_rate_at_k,
    intra_list_diversity,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
    self_information,
    tie_aware_recall,
    tied_at_cutoff,
)
from recommender.evaluation.protocol import (
    ALGORITHMS,
    LIGHT_USER_RATINGS,
    METRICS,
    RELEVANT_RATING,
    SEGMENTS,
    WEIGHTS,
    EvalResult,
    EvalSetup,
    EvalSpec,
    Variant,
    best_weights,
    evaluate,
    metrics_table,
    metrics_text,
    prepare,
    recommend_lists,
    user_metrics,
    variants,
)
from recommender.evaluation.split import Split, split_ratings

__all__ = [
    "DIVERSITIES", "DiversityCurve", "evaluate_diversity",
    "ALGORITHMS", "LIGHT_USER_RATINGS", "METRICS", "RELEVANT_RATING", "SEGMENTS", "WEIGHTS",
    "EvalResult", "EvalSetup", "EvalSpec", "Split", "Variant", "average_precision_at_k",
    "best_weights", "catalogue_coverage", "evaluate", "genre_matrix", "hit_rate_at_k",
    "intra_list_diversity", "metrics_table", "metrics_text", "ndcg_at_k", "novelty",
    "precision_at_k", "prepare", "recall_at_k", "recommend_lists", "self_information",
    "split_ratings", "tie_aware_recall", "tied_at_cutoff", "user_metrics", "variants",
]
