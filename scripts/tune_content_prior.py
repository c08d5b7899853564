"""Choose the content model's quality/popularity prior on the validation split.

Prints NDCG@10, recall@10 and coverage of content alone for each prior weight on
the validation split, then the chosen weight (best validation NDCG) and its
change on the test split against no prior. The test split is read only for the
report, never for the choice.

    python scripts/tune_content_prior.py [--users 1000]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.config import load_settings  # noqa: E402
from recommender.data.catalog import load_bundled_anime, load_bundled_ratings  # noqa: E402
from recommender.evaluation import EvalSpec, evaluate  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def content_metrics(anime, ratings, weight: float, split: str, users: int) -> dict:
    # Content alone: the learned models and the hybrid sweep are not needed here.
    params = replace(load_settings().params.with_model("content", prior_weight=weight),
                     use_models=False)
    spec = EvalSpec(split=split, n_users=users, k=10, random_state=0, params=params,
                    algorithms=("content",), weights=(0.0,))
    table = evaluate(anime, ratings, spec, progress=None, cache_dir=None).table
    row = table[(table["algorithm"] == "content") & (table["segment"] == "all")].iloc[0]
    return {metric: float(row[metric]) for metric in ("ndcg", "recall", "coverage")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    anime, ratings = load_bundled_anime(), load_bundled_ratings()
    rows = {}
    print("prior weight | validation NDCG@10 | recall@10 | coverage")
    for weight in WEIGHTS:
        m = content_metrics(anime, ratings, weight, "validation", args.users)
        rows[weight] = m
        print(f"{weight:12.2f} | {m['ndcg']:.4f} | {m['recall']:.4f} | {m['coverage']:.3f}")
    best = max(WEIGHTS, key=lambda w: rows[w]["ndcg"])
    plain, chosen = (content_metrics(anime, ratings, w, "test", args.users) for w in (0.0, best))
    print(f"chosen on validation: prior_weight={best}")
    print(f"test NDCG@10: {plain['ndcg']:.4f} without the prior, {chosen['ndcg']:.4f} with it "
          f"({chosen['ndcg'] / plain['ndcg']:.2f}x); coverage {plain['coverage']:.3f} -> "
          f"{chosen['coverage']:.3f}")


if __name__ == "__main__":
    main()
