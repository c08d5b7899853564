"""The engine's parts, and building them in memory from training data.

Start-up (``startup``) and :meth:`RecommenderEngine.from_frames` both end in
:func:`build_parts`; the engine receives an :class:`EngineParts` and builds
nothing itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recommender.config import EngineParams, Settings
from recommender.core.matrix import IdIndex, matrix_from_frame
from recommender.core.profiling import PROFILER
from recommender.core.types import Scorer, Snapshot, TrainingData, UserRows
from recommender.models import registry
from recommender.models.user_knn import UserKNN
from recommender.serving.cache import ModelCache
from recommender.serving.search import TitleSearch
from recommender.serving.users import UserStore

_log = logging.getLogger(__name__)


@dataclass(eq=False)
class EngineParts:
    """Everything an engine is made of (see :class:`RecommenderEngine`)."""

    params: EngineParams
    snapshot: Snapshot
    models: dict[str, Scorer]
    search: TitleSearch
    #: New users in the database; None for an in-memory engine.
    users: UserStore | None = None
    #: The on-disk model cache; None in memory.
    cache: ModelCache | None = None
    #: The database revision the data was read at (None in memory).
    revision: str | None = None
    #: The settings a database-backed engine was started with (None in memory).
    settings: Settings | None = None
    info: dict = field(default_factory=dict)
    #: Learned algorithms left for a background fit (``build_parts(defer_learned=True)``);
    #: ``held`` are those of them read back from the cache, which that fit reuses.
    deferred: tuple[str, ...] = ()
    held: dict[str, Scorer] = field(default_factory=dict)


def training_data(anime: pd.DataFrame, ratings: pd.DataFrame) -> TrainingData:
    """Id maps and the rating matrix for clean frames (the catalogue is sorted by anime_id)."""
    with PROFILER.stage("matrix", memory=True):
        anime = anime.sort_values("anime_id").reset_index(drop=True)
        items = IdIndex(anime["anime_id"].to_numpy(np.int64))
        unknown = items.numbers(ratings["anime_id"].to_numpy()) < 0
        if unknown.any():
            _log.warning("dropping %d ratings of anime not in the catalogue", int(unknown.sum()))
            ratings = ratings[~unknown]
        users = IdIndex.from_ids(ratings["user_id"].to_numpy())
        matrix = matrix_from_frame(ratings, users, items)
    return TrainingData(anime=anime, users=users, items=items, ratings=matrix)


def build_parts(data: TrainingData, params: EngineParams, *,
                restored: Mapping[str, Scorer] | None = None,
                rows: UserRows | None = None,
                search: TitleSearch | None = None,
                progress: registry.FitProgress | None = None,
                defer_learned: bool = False) -> EngineParts:
    """Fit every enabled algorithm on ``data`` (reusing ``restored`` ones) into parts.

    ``rows`` are the user-user rows of ``data`` when already known (from the
    cache, or shared by a tuning run); ``search`` a title index already built
    over ``data.anime``. ``progress`` hears of each model before it is fitted.
    ``defer_learned``: when a learned model would have to be fitted, fit only the
    others and list every learned one in ``deferred`` (see ``serving.background``).
    """
    restored = dict(restored or {})
    learned = [a for a in registry.enabled(params.use_models, params.use_ranker) if a.learned]
    # Worth a background fit only when a slow one is missing (a blend builds in ms).
    slow = [a for a in learned if a.name not in restored and a.fit_cost >= 1.0]
    deferred = tuple(a.name for a in learned) if defer_learned and slow else ()
    held = {name: restored.pop(name) for name in deferred if name in restored}
    models = registry.fit_all(data, params.models,
                              use_learned=params.use_models and not deferred,
                              use_opt_in=params.use_ranker,
                              restored=restored, progress=progress)
    knn = models["user-user"]
    if not isinstance(knn, UserKNN):
        raise TypeError("the user-user algorithm must be a UserKNN")
    if rows is None:
        rows = knn.rows(data.ratings)
    if search is None:
        with PROFILER.stage("title index"):
            search = TitleSearch(data.anime)
    info = {}
    if data.ratings.nnz == 0:
        info["notice"] = ("there are no ratings yet: content and popularity (from the "
                          "catalogue's member counts) still recommend from a list of titles")
    return EngineParts(params=params, snapshot=Snapshot(data, rows), models=models,
                       search=search, info=info, deferred=deferred, held=held)
