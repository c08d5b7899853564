"""What the Tune page computes: the hybrid on each collaborative part, and readouts.

No streamlit here: the page draws, this module evaluates and reads the table.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd

from dashboard.charts import LABELS_COLLAB
from recommender.config import EngineParams
from recommender.data.catalog import load_bundled_anime, load_bundled_ratings
from recommender.evaluation import (
    DIVERSITIES,
    DiversityCurve,
    EvalResult,
    EvalSpec,
    evaluate,
    evaluate_diversity,
)
from recommender.evaluation.protocol import EngineFactory
from recommender.evaluation.tuning import reporting_factory

#: The weight slider's step, as on the Recommend page; every step is evaluated.
WEIGHT_STEP = 0.05
WEIGHTS: tuple[float, ...] = tuple(round(WEIGHT_STEP * i, 2) for i in range(21))
#: Collaborative parts the hybrid is evaluated on (Recommend offers each).
COLLABORATIVE: tuple[str, ...] = ("user-user", "ease", "ranker")
COLLABORATIVE_LABELS = {c: LABELS_COLLAB[c] for c in COLLABORATIVE}
#: The readout's metrics: accuracy, the share of the catalogue shown, and novelty.
READOUT = ("ndcg", "coverage", "novelty")
#: The variety readout's metrics: accuracy, the share of the catalogue shown, genre diversity.
DIVERSITY_READOUT = ("ndcg", "coverage", "intra_list_diversity")
#: The Variety slider's step, as on the Recommend page; every step is evaluated.
DIVERSITY_STEP = 0.1
#: Share of the page's progress bar for the hybrids; the diversity sweep has the rest.
HYBRIDS_SHARE = 0.85
#: Share of the hybrids' progress for fitting the models.
FIT_SHARE = 0.4

#: ``progress(fraction, text)`` for a progress bar.
Progress = Callable[[float, str], None]


@lru_cache(maxsize=1)
def _bundled() -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_bundled_anime(), load_bundled_ratings()


def tune_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The catalogue and ratings the page evaluates on (the bundled data; read once)."""
    return _bundled()


def fitting_progress(progress: Progress):
    """The ``reporting_factory`` callback: fitting fills the first :data:`FIT_SHARE`."""
    def fitting(label: str, done: int, total: int) -> None:
        progress(FIT_SHARE * done / max(total, 1),
                 f"Fitting the models on the training split: {label} ({done + 1} of "
                 f"{total + 1})…")
    return fitting


def evaluate_tune(anime: pd.DataFrame, ratings: pd.DataFrame, *, split: str, n_users: int,
                  k: int, seed: int, cache_dir: str | Path | None, progress: Progress,
                  ) -> tuple[pd.DataFrame, list[EvalResult], DiversityCurve]:
    """Everything the Tune page shows: :func:`evaluate_hybrids`, then :func:`evaluate_variety`.

    Both evaluate one engine fitted once (the served parameters on the same
    training split), so the sweep adds scoring time only. ``progress`` never
    moves back, whichever of the two has to fit (the other may come from the cache).
    """
    highest = [0.0]

    def forward(fraction: float, text: str) -> None:
        highest[0] = max(highest[0], fraction)
        progress(highest[0], text)

    def first(fraction: float, text: str) -> None:
        forward(HYBRIDS_SHARE * fraction, text)

    def second(fraction: float, text: str) -> None:
        forward(HYBRIDS_SHARE + (1 - HYBRIDS_SHARE) * fraction, text)

    factory = reporting_factory(fitting_progress(first))
    table, results = evaluate_hybrids(anime, ratings, split=split, n_users=n_users, k=k,
                                      seed=seed, cache_dir=cache_dir, progress=first,
                                      factory=factory)
    curve = evaluate_variety(anime, ratings, split=split, n_users=n_users, k=k, seed=seed,
                             cache_dir=cache_dir, progress=second, factory=factory)
    progress(1.0, "Done")
    return table, results, curve


def evaluate_variety(anime: pd.DataFrame, ratings: pd.DataFrame, *, split: str, n_users: int,
                     k: int, seed: int, cache_dir: str | Path | None, progress: Progress,
                     factory: EngineFactory | None = None) -> DiversityCurve:
    """The served default algorithm at every Variety step (:data:`DIVERSITIES`)."""
    factory = factory or reporting_factory(fitting_progress(progress))
    spec = EvalSpec(split=split, n_users=n_users, k=k, random_state=seed)

    def scoring(done: int, total: int) -> None:
        progress(done / max(total, 1), f"Scoring users at every variety… {done}/{total}")

    return evaluate_diversity(anime, ratings, spec, diversities=DIVERSITIES,
                              cache_dir=cache_dir, engine_factory=factory, progress=scoring)


def evaluate_hybrids(anime: pd.DataFrame, ratings: pd.DataFrame, *, split: str, n_users: int,
                     k: int, seed: int, cache_dir: str | Path | None,
                     progress: Progress, factory: EngineFactory | None = None,
                     ) -> tuple[pd.DataFrame, list[EvalResult]]:
    """Every algorithm alone, and the hybrid on each :data:`COLLABORATIVE` part at every weight.

    One fitted engine serves every evaluation (see
    :func:`~recommender.evaluation.tuning.reporting_factory`); ``progress``
    covers fitting (first 40%) and then scoring; ``factory`` (default: a
    :func:`reporting_factory` reporting to ``progress``) can be shared with
    another evaluation of the same split. The table is the protocol's,
    with a ``collaborative`` column naming the hybrid's part (empty for an
    algorithm alone); hybrid variants read e.g. "hybrid (EASE) w=0.55".
    """
    parts = len(COLLABORATIVE)
    factory = factory or reporting_factory(fitting_progress(progress))
    tables, results = [], []
    for number, collaborative in enumerate(COLLABORATIVE):
        name = COLLABORATIVE_LABELS[collaborative]
        start = FIT_SHARE + (1 - FIT_SHARE) * number / parts

        def scoring(done: int, total: int, start=start, name=name) -> None:
            progress(start + (1 - FIT_SHARE) / parts * done / max(total, 1),
                     f"Scoring users for the hybrid on {name}… {done}/{total}")

        spec = EvalSpec(split=split, n_users=n_users, k=k, random_state=seed, weights=WEIGHTS,
                        collaborative=collaborative,
                        # The algorithms alone once, beside the first hybrid.
                        **({} if number == 0 else {"algorithms": ()}))
        result = evaluate(anime, ratings, spec, cache_dir=cache_dir, engine_factory=factory,
                          progress=scoring)
        table = result.table.copy()
        hybrid = table["algorithm"] == "hybrid"
        table["collaborative"] = _where(hybrid, collaborative, "")
        table.loc[hybrid, "variant"] = [f"hybrid ({name}) w={w:.2f}"
                                        for w in table.loc[hybrid, "weight"]]
        tables.append(table)
        results.append(result)
    progress(1.0, "Done")
    return pd.concat(tables, ignore_index=True), results


def _where(mask: pd.Series, yes: str, no: str) -> list[str]:
    return [yes if m else no for m in mask]


def hybrid_rows(table: pd.DataFrame, collaborative: str) -> pd.DataFrame:
    """The hybrid rows on one collaborative part, with ``algorithm`` still "hybrid"."""
    return table[(table["algorithm"] == "hybrid") & (table["collaborative"] == collaborative)]


def readout(table: pd.DataFrame, segment: str, collaborative: str, weight: float,
            default_weight: float | None = None,
            default_collaborative: str = "user-user") -> dict:
    """NDCG, coverage and novelty of the hybrid at ``weight``, and the change from the default.

    The default is the served hybrid: ``default_collaborative`` at
    ``EngineParams().hybrid_weight``. Returns ``{metric: (value, change)}``.
    """
    default_weight = EngineParams().hybrid_weight if default_weight is None else default_weight

    def row(collab: str, w: float) -> pd.Series:
        rows = hybrid_rows(table, collab)
        rows = rows[(rows["segment"] == segment) & ((rows["weight"] - w).abs() < 1e-9)]
        return rows.iloc[0]

    now, default = row(collaborative, weight), row(default_collaborative, default_weight)
    return {m: (float(now[m]), float(now[m] - default[m])) for m in READOUT}


def recommend_link_params(weight: float, collaborative: str) -> dict[str, str]:
    """Query parameters of the Recommend page showing the hybrid at this weight."""
    return {"algorithm": "hybrid", "weight": f"{weight:.2f}", "collab": collaborative}


def recommend_address(weight: float, collaborative: str) -> str:
    """The Recommend page's address (relative) for the hybrid at this weight."""
    return "/recommend?" + urlencode(recommend_link_params(weight, collaborative))


def diversity_readout(curve: pd.DataFrame, segment: str, diversity: float) -> dict:
    """NDCG, coverage and genre diversity at ``diversity``, and the change from 0 (no MMR).

    Returns ``{metric: (value, change)}`` for :data:`DIVERSITY_READOUT`.
    """
    rows = curve[curve["segment"] == segment]

    def at(value: float) -> pd.Series:
        return rows[(rows["diversity"] - value).abs() < 1e-9].iloc[0]

    now, plain = at(diversity), at(0.0)
    return {m: (float(now[m]), float(now[m] - plain[m])) for m in DIVERSITY_READOUT}


def recommend_diversity_params(diversity: float) -> dict[str, str]:
    """Query parameters of the Recommend page at this Variety (its default algorithm)."""
    return {"div": f"{diversity:.1f}"}


def recommend_diversity_address(diversity: float) -> str:
    """The Recommend page's address (relative) at this Variety."""
    return "/recommend?" + urlencode(recommend_diversity_params(diversity))
