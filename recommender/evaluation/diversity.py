"""The MMR diversity sweep: accuracy, coverage and genre diversity as ``diversity`` grows.

For the served default algorithm (at its default weight and collaborative
part), on the users :func:`~recommender.evaluation.protocol.prepare` picks for
the same split, count and seed as the hybrid-weight evaluation, so the two
are measured on the same people. Results are cached on disk like
:func:`~recommender.evaluation.protocol.evaluate`'s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.evaluation.compare import diversity_lists
from recommender.evaluation.protocol import (
    CACHE_VERSION,
    EngineFactory,
    EvalSpec,
    Progress,
    data_fingerprint,
    prepare,
    segment_means,
    write_cached,
)
from recommender.evaluation.split import Split

_log = logging.getLogger(__name__)

#: MMR settings swept: 0.0, 0.1, ..., 1.0 (the Recommend page's Variety steps).
DIVERSITIES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
#: The sweep's metric columns.
CURVE_METRICS: tuple[str, ...] = ("ndcg", "coverage", "intra_list_diversity", "novelty")
#: Bump when the sweep changes, so old cached curves are not reused.
CURVE_VERSION = 1


@dataclass(frozen=True, eq=False)
class DiversityCurve:
    """One row per (``diversity``, ``segment``) with the mean of each metric over its users."""

    table: pd.DataFrame
    algorithm: str
    meta: dict


def curve_key(spec: EvalSpec, diversities, fingerprint: str) -> str:
    """Hex key of a sweep: data, parameters, split, seed, users, k and the settings swept."""
    payload = json.dumps({"kind": "diversity", "version": CURVE_VERSION,
                          "protocol": CACHE_VERSION, "data": fingerprint,
                          "diversities": [float(d) for d in diversities], **spec.as_dict()},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def evaluate_diversity(anime: pd.DataFrame, ratings: pd.DataFrame, spec: EvalSpec, *,
                       diversities=DIVERSITIES, cache_dir: str | Path | None = None,
                       engine_factory: EngineFactory | None = None,
                       progress: Progress | None = None,
                       split: Split | None = None) -> DiversityCurve:
    """NDCG@k, catalogue coverage, intra-list genre diversity and novelty per ``diversity``.

    Only ``spec``'s split, users, k, seed and params matter (its algorithms and
    weights are ignored: the served default algorithm is swept). Cached as
    ``diversity-<key>.json`` under ``cache_dir`` (None: no cache);
    ``progress(done, total)`` counts scored users, and is not called on a cache hit.
    """
    spec = replace(spec, algorithms=(), weights=())
    key = curve_key(spec, diversities, data_fingerprint(anime, ratings))
    path = Path(cache_dir) / f"diversity-{key}.json" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            payload = json.loads(path.read_text())
            return DiversityCurve(pd.DataFrame(payload["table"]), payload["algorithm"],
                                  {**payload["meta"], "cached": True})
        except (ValueError, KeyError, TypeError) as exc:
            _log.warning("ignoring unreadable diversity cache %s: %s", path, exc)
    started = time.perf_counter()
    setup = prepare(anime, ratings, spec, engine_factory=engine_factory, split=split)
    engine = setup.engine
    algorithm = engine.default_algorithm
    fitted = time.perf_counter()
    lists = diversity_lists(setup, algorithm, diversities, progress=progress)
    table = curve_table(setup, lists)
    meta = {"key": key, "cached": False, "users": len(setup.user_ids),
            "weight": engine.params.hybrid_weight, "collaborative": engine.default_collaborative,
            "fit_seconds": round(fitted - started, 2),
            "score_seconds": round(time.perf_counter() - fitted, 2)}
    curve = DiversityCurve(table, algorithm, meta)
    if path is not None:
        write_cached(path, {"algorithm": algorithm, "meta": meta,
                            "table": json.loads(table.to_json(orient="records"))})
    return curve


def curve_table(setup, lists: dict[float, list[np.ndarray]]) -> pd.DataFrame:
    """The sweep's rows from each setting's lists, per user segment (all, light, heavy)."""
    rows = []
    for diversity, per_user in lists.items():
        for segment, users, means, coverage in segment_means(setup, per_user):
            # A one-item list has no pair, so no diversity (NaN): left out of the mean.
            rows.append({"diversity": float(diversity), "segment": segment, "users": users,
                         "ndcg": float(means["ndcg"]), "coverage": coverage,
                         "intra_list_diversity": float(means["diversity"]),
                         "novelty": float(means["novelty"])})
    return pd.DataFrame(rows)
