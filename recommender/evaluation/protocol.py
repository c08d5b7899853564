"""Offline evaluation: a leak-free hold-out split, ranking metrics and hybrid-weight sweeps.

Protocol
--------
- **Split** (:func:`split_ratings`). For every user with at least ``min_ratings``
  explicit ratings (1..10), a seeded random 20% of those rows is held out as
  *test* and another 20% as *validation*; the rest, and every -1 row, is
  *train*. Users with fewer explicit ratings stay whole in train (they still
  shape neighbours and popularity, but are not evaluated).
- **Leakage.** Everything learned (user vectors, the hnswlib index, TF-IDF,
  popularity, normalisation) is fitted on the training frame only:
  validation is scored by an engine fitted on train, test (the final report,
  once settings are chosen) by an engine fitted on train + validation.
- **Relevance.** A held-out row is relevant when rated at least
  :data:`RELEVANT_RATING` (8, the engine's "like"). -1 rows are never relevant
  (and never held out).
- **Users.** Those with at least one relevant held-out row; a seeded sample of
  ``n_users`` of them (0 = all). Segments: ``light`` users have fewer than
  :data:`LIGHT_USER_RATINGS` explicit ratings in the training frame, ``heavy``
  the rest.
- **Lists.** Each user's top-``k`` comes from the engine's own ranking path
  (:class:`~recommender.serving.ranking.Ranker`: allowed items, fallback chain,
  top n), so it is exactly what ``engine.recommend`` returns. Every algorithm
  is scored once per user; the hybrid is re-blended for each weight from
  those scores.

Any algorithm of the registry can be evaluated: name it in
``EvalSpec.algorithms``, or blend it as ``EvalSpec.collaborative``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.config import EngineParams
from recommender.core.types import Context
from recommender.errors import InvalidParameterError
from recommender.evaluation.compare import compare_to, feature_importances
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
)
from recommender.evaluation.setup import EvalSetup, Variant
from recommender.evaluation.split import Split, split_ratings
from recommender.models import registry
from recommender.models.registry import HYBRID
from recommender.serving.engine import RecommenderEngine

_log = logging.getLogger(__name__)

#: A held-out rating at or above this is relevant (the engine's "like").
RELEVANT_RATING = 8
#: Users with fewer explicit training ratings than this form the "light" segment.
LIGHT_USER_RATINGS = 20
#: Hybrid weights swept: 0.0, 0.1, ..., 1.0 (rounded so 0.3 is the literal 0.3).
WEIGHTS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
#: Algorithms evaluated besides the hybrid sweep: every one an engine fits whatever
#: ``use_ranker`` says. The ranker is the default hybrid's part, so the sweep's w=1 row
#: is the ranker alone; ``algorithms=(..., "ranker")`` lists it under its own name too.
ALGORITHMS: tuple[str, ...] = tuple(a.name for a in registry.ALGORITHMS if not a.opt_in)
#: Metric columns of the results table, in display order.
METRICS: tuple[str, ...] = ("ndcg", "recall", "precision", "hit_rate", "map",
                            "coverage", "novelty", "diversity")
SEGMENTS: tuple[str, ...] = ("all", "light", "heavy")
#: Bump when the protocol or a metric changes, so old cached results are not reused.
CACHE_VERSION = 3

Progress = Callable[[int, int], None]
EngineFactory = Callable[[pd.DataFrame, pd.DataFrame, EngineParams], RecommenderEngine]


# ---------------------------------------------------------------------------- setup
@dataclass(frozen=True)
class EvalSpec:
    """Everything that decides an evaluation's numbers (and its cache key)."""

    split: str = "validation"
    n_users: int = 1000          # 0 = every eligible user
    k: int = 10
    random_state: int = 0
    params: EngineParams = field(default_factory=EngineParams)
    weights: tuple[float, ...] = WEIGHTS
    algorithms: tuple[str, ...] = ALGORITHMS
    #: The hybrid's collaborative part ("": the params' ``hybrid_collaborative``).
    collaborative: str = ""
    #: Names a custom ``engine_factory`` (its results are cached apart).
    tag: str = ""

    def __post_init__(self) -> None:
        if not self.collaborative:
            object.__setattr__(self, "collaborative", self.params.hybrid_collaborative)

    def as_dict(self) -> dict:
        return {"split": self.split, "n_users": self.n_users, "k": self.k,
                "random_state": self.random_state, "params": self.params.as_dict(),
                "weights": list(self.weights), "algorithms": list(self.algorithms),
                "collaborative": self.collaborative, "tag": self.tag}


def data_fingerprint(anime: pd.DataFrame, ratings: pd.DataFrame) -> str:
    """A hash of the rating rows and the catalogue columns the models read."""
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(
        ratings[["user_id", "anime_id", "rating"]], index=False).to_numpy().tobytes())
    columns = [c for c in ("anime_id", "name", "genre", "type", "synopsis") if c in anime]
    digest.update(pd.util.hash_pandas_object(
        anime[columns].astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()


def cache_key(spec: EvalSpec, fingerprint: str) -> str:
    """Hex key of an evaluation: data fingerprint, parameters, split, seed, users, k."""
    payload = json.dumps({"version": CACHE_VERSION, "data": fingerprint, **spec.as_dict()},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def prepare(anime: pd.DataFrame, ratings: pd.DataFrame, spec: EvalSpec | None = None, *,
            engine_factory: EngineFactory | None = None,
            split: Split | None = None) -> EvalSetup:
    """Split, fit an engine on the training side only, and pick the users to evaluate."""
    spec = spec or EvalSpec()
    if spec.k < 1:
        raise InvalidParameterError(f"k must be at least 1, got {spec.k}")
    split = split or split_ratings(ratings, random_state=spec.random_state)
    fit_on, held_out = split.frames(spec.split)
    factory = engine_factory or RecommenderEngine.from_frames
    engine = factory(anime, fit_on, spec.params)
    for name in (*spec.algorithms, spec.collaborative):
        engine.scorer(name)  # an unknown name fails here, not after scoring
    if spec.collaborative not in engine.collaborative_algorithms:
        raise InvalidParameterError(f"{spec.collaborative!r} cannot be the hybrid's "
                                    "collaborative part")
    items, users = engine.data.items, engine.data.users
    liked = held_out[held_out["rating"].to_numpy() >= RELEVANT_RATING]
    item_idx = items.numbers(liked["anime_id"].to_numpy())
    known = (item_idx >= 0) & (users.numbers(liked["user_id"].to_numpy()) >= 0)
    by_user = pd.Series(item_idx[known]).groupby(liked["user_id"].to_numpy()[known])
    relevant = {int(u): np.sort(v.to_numpy(np.int64)) for u, v in by_user}
    user_ids = np.array(sorted(relevant), dtype=np.int64)
    if spec.n_users and spec.n_users < len(user_ids):
        rng = np.random.default_rng(spec.random_state)
        user_ids = np.sort(rng.choice(user_ids, spec.n_users, replace=False))
    matrix = engine.data.ratings
    explicit = np.add.reduceat((matrix.data > 0).astype(np.int64), matrix.indptr[:-1]) \
        if matrix.nnz else np.zeros(matrix.shape[0], np.int64)
    explicit = np.where(np.diff(matrix.indptr) > 0, explicit, 0)  # reduceat repeats on empty rows
    light = explicit[users.numbers(user_ids)] < LIGHT_USER_RATINGS
    watched = np.bincount(matrix.indices, minlength=matrix.shape[1])
    return EvalSetup(engine=engine, spec=spec, user_ids=user_ids,
                     relevant=[relevant[int(u)] for u in user_ids], light=light,
                     information=self_information(watched, matrix.shape[0]),
                     genres=genre_matrix(engine.anime))


# ---------------------------------------------------------------------------- lists
def variants(spec: EvalSpec) -> list[Variant]:
    """The hybrid at every weight of ``spec``, then each algorithm alone."""
    return ([Variant("hybrid", float(w)) for w in spec.weights]
            + [Variant(a) for a in spec.algorithms])


def recommend_lists(setup: EvalSetup, wanted: Sequence[Variant] | None = None,
                    progress: Progress | None = None) -> dict[Variant, list[np.ndarray]]:
    """Top-k item positions per variant and user, scoring each algorithm once per user.

    Every list is what ``engine.recommend(user, algorithm, weight=..., n=k)``
    returns: the same allowed mask, fallback chain and tie-break.
    """
    engine, spec = setup.engine, setup.spec
    wanted = list(wanted) if wanted is not None else variants(spec)
    needed = {"content", "popularity"} | {v.algorithm for v in wanted if v.algorithm != HYBRID}
    if any(v.algorithm == HYBRID for v in wanted):
        needed.add(spec.collaborative)
    ranker, context = engine.ranker, Context(engine.snapshot)
    out: dict[Variant, list[np.ndarray]] = {v: [] for v in wanted}
    total = len(setup.user_ids)
    step = max(1, total // 100)
    no_exclusions = np.empty(0, np.int64)
    for done, user_id in enumerate(setup.user_ids, start=1):
        profile = engine.profile(user_id=int(user_id))
        allowed = ranker.allowed(profile, no_exclusions)
        parts = {name: ranker.score(name, profile, context) for name in sorted(needed)}
        for v in wanted:
            chain = ranker.chain(
                profile, context, v.algorithm, parts, collaborative=spec.collaborative,
                weight=engine.params.hybrid_weight if v.weight is None else v.weight)
            items, _ = ranker.top(chain, spec.k, allowed)
            out[v].append(items)
        if progress is not None and (done % step == 0 or done == total):
            progress(done, total)
    return out


def user_metrics(setup: EvalSetup, lists: list[np.ndarray]) -> pd.DataFrame:
    """Per-user accuracy, novelty and diversity of one variant's lists (one row per user)."""
    k = setup.spec.k
    rows = [(ndcg_at_k(r, rel, k), recall_at_k(r, rel, k), precision_at_k(r, rel, k),
             hit_rate_at_k(r, rel, k), average_precision_at_k(r, rel, k),
             novelty(r, setup.information), intra_list_diversity(r, setup.genres))
            for r, rel in zip(lists, setup.relevant)]
    return pd.DataFrame(rows, columns=["ndcg", "recall", "precision", "hit_rate", "map",
                                       "novelty", "diversity"])


def segment_means(setup: EvalSetup, lists: list[np.ndarray]):
    """Per user segment (all, light, heavy) of one variant's lists: its name, its number
    of users, the mean of each :func:`user_metrics` column over them (NaN skipped; NaN
    for no users) and the catalogue coverage of their lists."""
    n_items = len(setup.engine.anime)
    masks = {"all": np.ones(len(setup.user_ids), bool), "light": setup.light,
             "heavy": ~setup.light}
    frame = user_metrics(setup, lists)
    for segment, mask in masks.items():
        chosen = [x for x, keep in zip(lists, mask) if keep]
        means = frame[mask].mean() if mask.any() else frame.iloc[:0].mean()
        yield segment, int(mask.sum()), means, catalogue_coverage(chosen, n_items)


def write_cached(path: Path, payload: dict) -> None:
    """Write one cached evaluation result as JSON, atomically: a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    tmp.replace(path)


def metrics_table(setup: EvalSetup, lists: Mapping[Variant, list[np.ndarray]]) -> pd.DataFrame:
    """One row per (variant, segment) with the mean of each metric over its users."""
    rows = []
    for v, per_user in lists.items():
        for segment, users, means, coverage in segment_means(setup, per_user):
            row = {"variant": v.label, "algorithm": v.algorithm, "weight": v.weight,
                   "segment": segment, "users": users}
            row.update({m: float(means[m]) for m in ("ndcg", "recall", "precision",
                                                      "hit_rate", "map")})
            row["coverage"] = coverage
            row["novelty"] = float(means["novelty"])
            row["diversity"] = float(means["diversity"])
            rows.append(row)
    table = pd.DataFrame(rows)
    table["weight"] = table["weight"].astype(float)
    return table


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class EvalResult:
    """The results table of one evaluation, with what produced it."""

    table: pd.DataFrame
    spec: EvalSpec
    meta: dict

    def best_weights(self, metric: str = "ndcg") -> pd.DataFrame:
        """Per segment: the hybrid weight with the highest ``metric`` (ties: the lower weight)."""
        return best_weights(self.table, metric)

    def to_json(self) -> dict:
        return {"spec": self.spec.as_dict(), "meta": self.meta,
                "table": json.loads(self.table.to_json(orient="records"))}

    @classmethod
    def from_json(cls, payload: dict) -> EvalResult:
        spec_dict = dict(payload["spec"])
        spec_dict["params"] = EngineParams.from_dict(spec_dict["params"])
        spec_dict["weights"] = tuple(spec_dict["weights"])
        spec_dict["algorithms"] = tuple(spec_dict["algorithms"])
        table = pd.DataFrame(payload["table"])
        table["weight"] = table["weight"].astype(float)
        return cls(table, EvalSpec(**spec_dict), payload["meta"])


def best_weights(table: pd.DataFrame, metric: str = "ndcg") -> pd.DataFrame:
    """Per segment: the hybrid weight with the highest ``metric`` (ties: the lower weight)."""
    if metric not in METRICS:
        raise InvalidParameterError(f"unknown metric {metric!r}; choose one of {METRICS}")
    hybrid = table[(table["algorithm"] == "hybrid") & table[metric].notna()]
    hybrid = hybrid.sort_values(["segment", "weight"])
    rows = []
    for segment, group in hybrid.groupby("segment", sort=False):  # empty segments drop out
        best = group.loc[group[metric].idxmax()]
        rows.append({"segment": segment, "weight": float(best["weight"]),
                     metric: float(best[metric]), "users": int(best["users"])})
    order = {s: i for i, s in enumerate(SEGMENTS)}
    return pd.DataFrame(rows).sort_values("segment", key=lambda s: s.map(order)) \
        .reset_index(drop=True)


def evaluate(anime: pd.DataFrame, ratings: pd.DataFrame, spec: EvalSpec | None = None, *,
             cache_dir: str | Path | None = None,
             engine_factory: EngineFactory | None = None,
             progress: Progress | None = None, split: Split | None = None) -> EvalResult:
    """Evaluate the hybrid at every weight plus each algorithm alone; cached on disk.

    Results are cached as JSON under ``cache_dir`` (None: no cache; the CLI and
    the dashboard pass ``Settings.eval_cache_dir``). ``progress(done, total)`` is called as
    users are scored (not at all when the result comes from the cache).
    """
    spec = spec or EvalSpec()
    key = cache_key(spec, data_fingerprint(anime, ratings))
    path = Path(cache_dir) / f"{key}.json" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            result = EvalResult.from_json(json.loads(path.read_text()))
            return replace(result, meta={**result.meta, "cached": True})
        except (ValueError, KeyError, TypeError) as exc:
            _log.warning("ignoring unreadable evaluation cache %s: %s", path, exc)
    started = time.perf_counter()
    setup = prepare(anime, ratings, spec, engine_factory=engine_factory, split=split)
    fitted = time.perf_counter()
    lists = recommend_lists(setup, progress=progress)
    table = metrics_table(setup, lists)
    meta = {"against_ease": json.loads(compare_to(setup, lists).to_json(orient="records")),
            "ranker_gain": feature_importances(setup), "key": key, "cached": False,
            "users": len(setup.user_ids),
            "light_users": int(setup.light.sum()), "n_items": len(setup.engine.anime),
            "relevant_rating": RELEVANT_RATING, "light_below": LIGHT_USER_RATINGS,
            "fit_seconds": round(fitted - started, 2),
            "score_seconds": round(time.perf_counter() - fitted, 2)}
    result = EvalResult(table, spec, meta)
    if path is not None:
        write_cached(path, result.to_json())
    return result


def metrics_text(result: EvalResult) -> str:
    """The results table as aligned text, a header line and the best weight per segment."""
    spec, meta = result.spec, result.meta
    head = (f"split={spec.split} users={meta['users']} (light {meta['light_users']}) "
            f"k={spec.k} seed={spec.random_state} relevant: held-out rating >= "
            f"{RELEVANT_RATING}{' (cached)' if meta.get('cached') else ''}")
    shown = result.table.drop(columns=["algorithm", "weight"]).copy()
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        body = shown.to_string(index=False, float_format=lambda x: f"{x:.4f}")
        best = result.best_weights().to_string(index=False, float_format=lambda x: f"{x:.4f}")
    text = f"{head}\n{body}\n\nbest hybrid weight by NDCG@{spec.k}:\n{best}"
    against = pd.DataFrame(meta.get("against_ease") or [])
    if not against.empty:
        against["95% CI"] = [f"[{lo:.3f}, {hi:.3f}]" for lo, hi in
                             zip(against["low"], against["high"])]
        wide = against.pivot(index="variant", columns="segment", values="ratio")
        ci = against[against["segment"] == "all"].set_index("variant")["95% CI"]
        wide = wide.reindex(columns=[c for c in ("all", "light", "heavy", "head", "tail")
                                     if c in wide]).reindex(against["variant"].unique())
        wide.insert(1, "all 95% CI", ci.reindex(wide.index))
        with pd.option_context("display.width", 200, "display.max_rows", 500):
            table = wide.to_string(float_format=lambda x: f"{x:.3f}")
        text += (f"\n\nNDCG@{spec.k} / EASE's on the same users (paired bootstrap over users, "
                 f"{1000} resamples; head = most-watched anime holding half the views):\n{table}")
    gain = meta.get("ranker_gain") or {}
    if gain:
        total = sum(gain.values()) or 1.0
        lines = [f"  {name:<22} {value / total:6.1%}" for name, value in list(gain.items())[:15]]
        text += "\n\nranker feature importance (share of total gain):\n" + "\n".join(lines)
    return text
