"""Holdout NDCG@10 of every algorithm on the bundled data (a small self-contained check).

Split: 2,000 users with at least 10 ratings are drawn with a fixed seed; half
are validation users, half test users. Each loses a random 20% of their rows,
which are held out; everything else trains one engine. An anime is relevant
when its held-out rating is 8 or more. Rankings are exactly what ``recommend``
ranks (watched and adult titles excluded, content then popularity filling up).

    .venv/bin/python scripts/holdout_models.py            # the table (validation and test)
    .venv/bin/python scripts/holdout_models.py --tune     # also the tuning grids (slow)
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender import EngineParams, RecommenderEngine  # noqa: E402
from recommender.core.scaling import scale_to_unit  # noqa: E402
from recommender.core.types import Scores  # noqa: E402
from recommender.data.catalog import (  # noqa: E402
    clean_anime,
    clean_ratings,
    load_bundled_anime,
    load_bundled_ratings,
)
from recommender.models.blend import parse_weights  # noqa: E402
from recommender.models.ease import EASE  # noqa: E402
from recommender.models.mf import ALSFactorization  # noqa: E402

K = 10


def split(ratings: pd.DataFrame, n_users: int = 2000, fraction: float = 0.2, seed: int = 0):
    """(train ratings, held-out ratings, validation user ids, test user ids)."""
    rng = np.random.default_rng(seed)
    counts = ratings.groupby("user_id").size()
    eligible = counts.index[counts >= 10].to_numpy()
    chosen = rng.permutation(eligible)[:n_users]
    val, test = np.sort(chosen[: n_users // 2]), np.sort(chosen[n_users // 2:])
    mine = ratings["user_id"].isin(chosen).to_numpy()
    pick = np.zeros(len(ratings), dtype=bool)
    for _, rows in ratings[mine].groupby("user_id").indices.items():
        idx = np.flatnonzero(mine)[rows]
        pick[rng.choice(idx, max(1, int(round(fraction * len(idx)))), replace=False)] = True
    return ratings[~pick], ratings[pick], val, test


def ndcg(ranked: np.ndarray, relevant: set) -> float:
    gains = np.array([1.0 if i in relevant else 0.0 for i in ranked[:K]])
    dcg = float((gains / np.log2(np.arange(2, len(gains) + 2))).sum())
    ideal = float((1.0 / np.log2(np.arange(2, min(len(relevant), K) + 2))).sum())
    return dcg / ideal


class Holdout:
    """One trained engine and the held-out relevant anime of the evaluated users."""

    def __init__(self, params: EngineParams, seed: int = 0):
        anime = clean_anime(load_bundled_anime())
        ratings = clean_ratings(load_bundled_ratings())
        train, held, self.val, self.test = split(ratings, seed=seed)
        t0 = time.perf_counter()
        data = RecommenderEngine.training_data(anime, train)
        self.engine = RecommenderEngine.fit(data, params)
        self.build_seconds = time.perf_counter() - t0
        liked = held[held["rating"] >= 8]
        items = self.engine.data.items
        self.relevant = {int(u): set(items.numbers(g["anime_id"].to_numpy()).tolist())
                         for u, g in liked.groupby("user_id")}
        self.users = {name: [u for u in ids if u in self.relevant]
                      for name, ids in (("validation", self.val), ("test", self.test))}
        self._profiles = {u: self.engine.profile(u) for us in self.users.values() for u in us}
        self._fixed: dict[str, dict[int, Scores]] = {}

    def scores(self, name: str, user: int) -> Scores:
        """Cached scores of the engine's own scorers (the models under tuning are not cached)."""
        cache = self._fixed.setdefault(name, {})
        if user not in cache:
            cache[user] = self.engine.scores(self._profiles[user], name)
        return cache[user]

    def evaluate(self, primary, users: list[int]) -> float:
        """Mean NDCG@10; ``primary(user)`` gives the scores ranked first."""
        total = 0.0
        for user in users:
            profile = self._profiles[user]
            allowed = self.engine.allowed_mask(profile)
            chain = [Scores(np.asarray(primary(user), dtype=np.float64), "x"),
                     self.scores("content", user), self.scores("popularity", user)]
            ranked, _ = self.engine.rank(chain, K, allowed)
            total += ndcg(ranked, self.relevant[user])
        return total / len(users)

    def model(self, name: str, split_name: str = "validation") -> float:
        return self.evaluate(lambda u: self.scores(name, u).values, self.users[split_name])

    def hybrid(self, cf: str, weight: float, split_name: str = "validation") -> float:
        def blended(u):
            return (weight * scale_to_unit(self.scores(cf, u).values)
                    + (1 - weight) * scale_to_unit(self.scores("content", u).values))
        return self.evaluate(blended, self.users[split_name])

    def blend(self, weights: dict[str, float], split_name: str = "validation") -> float:
        def blended(u):
            return sum(w * scale_to_unit(self.scores(n, u).values) for n, w in weights.items())
        return self.evaluate(blended, self.users[split_name])

    def scorer(self, scorer, split_name: str = "validation") -> float:
        """NDCG@10 of a freshly fitted scorer (not the engine's)."""
        scorer.fit(self.engine.data)
        return self.evaluate(lambda u: scorer.score(self._profiles[u]).values,
                             self.users[split_name])


def tune(h: Holdout) -> None:
    print("\n# EASE grid (validation)")
    for weighting, lam, dislike in (("binary", 300, 0), ("rating", 50, 0), ("rating", 100, 0),
                                    ("rating", 300, 0), ("rating", 100, 5), ("rating", 100, 7)):
        v = h.scorer(EASE(lam=lam, weighting=weighting, dislike_below=dislike))
        print(f"ease weighting={weighting} lambda={lam} dislike_below={dislike}: {v:.4f}",
              flush=True)
    print("\n# MF grid (validation)")
    for factors, reg, alpha, dislike in ((128, 0.05, 10, 0), (128, 5, 3, 0), (128, 50, 3, 0),
                                         (128, 50, 5, 0), (64, 20, 3, 0), (128, 50, 5, 5),
                                         (128, 50, 5, 7)):
        v = h.scorer(ALSFactorization(factors=factors, regularization=reg, alpha=alpha,
                                      dislike_below=dislike))
        print(f"mf factors={factors} reg={reg} alpha={alpha} dislike_below={dislike}: {v:.4f}",
              flush=True)
    print("\n# hybrid weights (validation)")
    for cf in ("user-user", "mf", "ease"):
        for w in (0.5, 0.7, 0.9):
            print(f"hybrid {cf} w={w}: {h.hybrid(cf, w):.4f}", flush=True)
    print("\n# blend weights (validation)")
    grid = [{"ease": 1.0, "user-user": u, "mf": m, "content": c}
            for u, m, c in itertools.product((0, 0.25, 0.5), (0, 0.25, 0.5), (0, 0.05, 0.1))]
    results = sorted(((h.blend({k: v for k, v in g.items() if v}), g) for g in grid),
                     key=lambda r: -r[0])
    for v, g in results[:8]:
        print(f"blend {g}: {v:.4f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", action="store_true", help="also run the tuning grids")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    params = EngineParams()
    h = Holdout(params, seed=args.seed)
    print(f"engine built on the training part in {h.build_seconds:.1f}s; users with a relevant "
          f"held-out anime: validation {len(h.users['validation'])}, test {len(h.users['test'])}")
    if args.tune:
        tune(h)
    weight = params.hybrid_weight
    rows = [("user-user", lambda s: h.model("user-user", s)),
            ("content", lambda s: h.model("content", s)),
            ("popularity", lambda s: h.model("popularity", s)),
            (f"hybrid (user-user, w={weight})", lambda s: h.hybrid("user-user", weight, s)),
            ("mf", lambda s: h.model("mf", s)),
            ("ease", lambda s: h.model("ease", s)),
            (f"hybrid (ease, w={weight})", lambda s: h.hybrid("ease", weight, s)),
            (f"blend ({params.blend_weights})",
             lambda s: h.blend(parse_weights(params.blend_weights), s))]
    print(f"\n| algorithm | validation NDCG@{K} | test NDCG@{K} |\n|---|---|---|")
    for name, run in rows:
        print(f"| {name} | {run('validation'):.4f} | {run('test'):.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

