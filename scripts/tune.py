"""Tune the engine's knobs on the VALIDATION split and print one table row per setting.

Coordinate descent from the current defaults: each stage tries the values of one
knob (or a small group) of one model, keeps the one with the best score of that
stage's target (the user-user hybrid at its best weight, or a learned model
alone), and moves on. Everything goes through the evaluation protocol
(``recommender.evaluation``); the test split is never touched here.

    .venv/bin/python scripts/tune.py [--users 400] [--seed 0] [--k 10] [--stages ease,mf]

Results are cached on disk (under the model cache's ``eval/``), so a rerun only
computes new settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.config import EngineParams, load_settings  # noqa: E402
from recommender.data.catalog import load_bundled_anime, load_bundled_ratings  # noqa: E402
from recommender.evaluation import EvalSpec, evaluate, split_ratings  # noqa: E402
from recommender.evaluation.tuning import headline, reusing_factory  # noqa: E402

#: (stage, model, target figure, [field overrides of that model's config, ...]).
STAGES: list[tuple[str, str, str, list[dict]]] = [
    ("similarity", "user-user", "hybrid best", [{"centre": True}, {"centre": False}]),
    ("neighbours", "user-user", "hybrid best", [{"n_neighbours": k} for k in (30, 100, 200)]),
    ("similarity power", "user-user", "hybrid best",
     [{"similarity_power": p} for p in (1.0, 2.0)]),
    ("watched vote", "user-user", "hybrid best", [{"watched_weight": w} for w in (0.2, 0.5)]),
    ("disliked vote", "user-user", "hybrid best", [{"disliked_weight": w} for w in (0.0, 0.5)]),
    ("synopsis", "content", "hybrid best", [{"use_synopsis": False}]
     + [{"use_synopsis": True, "synopsis_weight": w} for w in (0.5, 1.0)]),
    ("type", "content", "hybrid best", [{"use_type": False},
                                        {"use_type": True, "type_weight": 0.2}]),
    # ANN knobs: the exact re-rank makes quality nearly insensitive to them; they
    # also set neighbour recall and build time, so they change only for a clear gain.
    ("vector dim", "user-user", "hybrid best", [{"dim": d} for d in (32, 64)]),
    ("hnsw ef", "user-user", "hybrid best", [{"ef": e} for e in (100, 300)]),
    ("ease l2", "ease", "ease", [{"l2": v} for v in (50.0, 100.0, 300.0)]),
    ("ease inputs", "ease", "ease", [{"weighting": "binary", "dislike_below": 0.0},
                                     {"weighting": "rating", "dislike_below": 0.0},
                                     {"weighting": "rating", "dislike_below": 5.0},
                                     {"weighting": "rating", "dislike_below": 7.0}]),
    ("mf regularisation", "mf", "mf", [{"regularization": r} for r in (5.0, 50.0)]),
    ("mf confidence", "mf", "mf", [{"alpha": a} for a in (3.0, 5.0, 10.0)]),
    ("mf dislikes", "mf", "mf", [{"dislike_below": d} for d in (0.0, 5.0, 7.0)]),
]
#: Knobs whose value changes only when quality clearly demands it (see above).
CONSERVATIVE = {"vector dim", "hnsw ef"}
CLEAR_GAIN = 0.005


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--stages", default="", help="comma-separated stage names (default all)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    wanted = {s.strip() for s in args.stages.split(",") if s.strip()}

    anime, ratings = load_bundled_anime(), load_bundled_ratings()
    split = split_ratings(ratings, random_state=args.seed)
    factory = reusing_factory()
    cache_dir = load_settings().eval_cache_dir
    params = EngineParams()
    rows = []
    for stage, model, target, options in STAGES:
        if wanted and stage not in wanted:
            continue
        scored = []
        for override in options:
            candidate = params.with_model(model, **override)
            algorithms = ("content", "popularity") if target == "hybrid best" else (target,)
            spec = EvalSpec(split="validation", n_users=args.users, k=args.k,
                            random_state=args.seed, params=candidate, algorithms=algorithms)
            result = evaluate(anime, ratings, spec, engine_factory=factory, split=split,
                              cache_dir=cache_dir)
            figures = headline(result)
            scored.append((figures[target], override, figures))
            setting = ", ".join(f"{k}={v}" for k, v in override.items())
            print(f"{stage:18s} {setting:40s} " + "  ".join(
                f"{name} {value:.4f}" for name, value in figures.items()), flush=True)
        config = params.model(model)
        current = next((s for s in scored if all(getattr(config, k) == v
                                                 for k, v in s[1].items())), None)
        best = max(scored, key=lambda s: s[0])
        if stage in CONSERVATIVE and current is not None and best[0] < current[0] + CLEAR_GAIN:
            best = current
        params = params.with_model(model, **best[1])
        for value, override, _figures in scored:
            rows.append({"stage": stage, "model": model, "target": target,
                         "setting": ", ".join(f"{k}={v}" for k, v in override.items()),
                         "score": round(value, 4), "chosen": override is best[1]})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(table.to_string(index=False))
    default = EngineParams().as_dict()["models"]
    chosen = {name: {k: v for k, v in config.items() if v != default[name][k]}
              for name, config in params.as_dict()["models"].items()}
    print("\nchosen settings (changes from the current defaults):",
          {k: v for k, v in chosen.items() if v} or "none")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "chosen": params.as_dict()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
