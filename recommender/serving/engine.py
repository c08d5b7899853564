"""RecommenderEngine: the public front. It checks arguments, delegates and returns frames.

The engine is assembled from parts (``serving.build``): the fitted models, one
:class:`~recommender.core.types.Snapshot` of the data, the title search, and
for a database-backed engine the user store and the model cache. Request
checks (``requests``), ranking with fallback (``ranking``) and result frames
(``frames``) are separate parts it owns.

Every request reads ``self._snapshot`` once and uses only that snapshot, so a
user added meanwhile is visible to it entirely or not at all. The snapshot is
replaced by one method, :meth:`publish_users`, under the engine's lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from recommender.config import VALIDATION_ORDER, EngineParams, Settings
from recommender.core.profiling import PROFILER, timed
from recommender.core.types import (
    Context,
    Scorer,
    Scores,
    SimilarItems,
    Snapshot,
    TrainingData,
    UserProfile,
)
from recommender.core.validate import choice, parse_id, unit_weight
from recommender.data.catalog import clean_anime, clean_ratings
from recommender.errors import InvalidParameterError, UnknownAnimeError
from recommender.models.franchise import franchise_groups
from recommender.models.registry import HYBRID
from recommender.models.user_knn import UserKNN
from recommender.serving import requests
from recommender.serving.background import BackgroundFit
from recommender.serving.build import EngineParts, build_parts, training_data
from recommender.serving.frames import group_franchises, sizes
from recommender.serving.ranking import ADULT_GENRE, Ranker, diversity_vectors, franchise_runs
from recommender.serving.search import TitleSearch
from recommender.serving.served import Served
from recommender.serving.users import UserStore, grown

_log = logging.getLogger(__name__)

#: Kept importable from here: the request-size bounds (``serving.requests``).
MAX_N, MAX_K, MAX_LIST = requests.MAX_N, requests.MAX_K, requests.MAX_LIST


class RecommenderEngine:
    """User-user CF, content TF-IDF, the learned models and their hybrid over one catalogue.

    Build it with :meth:`from_frames` (in memory) or :meth:`from_settings`
    (database and on-disk cache). Queries are thread-safe; so are
    :meth:`add_user` and :meth:`catch_up`.
    """

    def __init__(self, parts: EngineParts):
        self.params: EngineParams = parts.params
        self._snapshot: Snapshot = parts.snapshot
        models: dict[str, Scorer] = dict(parts.models)
        knn = models.get("user-user")
        if not isinstance(knn, UserKNN):
            raise TypeError("an engine needs a fitted user-user model")
        self._knn = knn
        self._search = parts.search
        self._users: UserStore | None = parts.users
        self._cache = parts.cache
        self._revision = parts.revision
        self._settings = parts.settings
        self._lock = threading.Lock()
        anime = parts.snapshot.data.anime
        adult = anime["genre"].fillna("").str.contains(ADULT_GENRE).to_numpy()
        self._adult = adult
        # Popularity's scores are the same for every profile; they break ties everywhere.
        tie_break = models["popularity"].score(
            UserProfile(np.empty(0, np.int64), np.empty(0, np.float32)),
            Context(parts.snapshot)).values
        self._franchise = franchise_groups(anime)
        self._served = Served.build(models, anime, tie_break, adult, parts.params.include_adult,
                                    diversity_vectors(anime, self._franchise))
        #: The learned models still being fitted after start-up (see :meth:`preparing`).
        self._background: BackgroundFit | None = None
        self.build_info: dict = dict(parts.info)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(cls, anime_df: pd.DataFrame, ratings_df: pd.DataFrame,
                    params: EngineParams | None = None) -> RecommenderEngine:
        """Build everything in memory from a Kaggle-format catalogue and ratings.

        ``anime_df`` has the ``anime.csv`` columns (optionally ``english_name``,
        ``japanese_name``, ``synopsis``); ``ratings_df`` has ``user_id``,
        ``anime_id`` and ``rating`` (-1 = watched, not rated). Ratings of anime
        the catalogue lacks are dropped with a warning.
        """
        with PROFILER.stage("load", memory=True):
            anime = clean_anime(anime_df)
            ratings = clean_ratings(ratings_df)
        return cls.fit(cls.training_data(anime, ratings), params or EngineParams())

    @staticmethod
    def training_data(anime: pd.DataFrame, ratings: pd.DataFrame) -> TrainingData:
        """Id maps and the rating matrix for clean frames (catalogue sorted by anime_id)."""
        return training_data(anime, ratings)

    @classmethod
    def fit(cls, data: TrainingData, params: EngineParams | None = None, *,
            models: Mapping[str, Scorer] | None = None,
            search: TitleSearch | None = None) -> RecommenderEngine:
        """Fit every algorithm on ``data``; fitted scorers in ``models`` are used as they are."""
        return cls(build_parts(data, params or EngineParams(), restored=models, search=search))

    @classmethod
    def from_settings(cls, settings=None, progress=None, *, rebuild: bool = False,
                      background: bool = False) -> RecommenderEngine:
        """The engine over the database in ``settings.database_url``, with the on-disk cache.

        ``settings`` defaults to :func:`recommender.config.load_settings` (env and
        ``.env``). An empty database first receives the bundled data. Models are
        loaded from ``settings.cache_dir`` when the cache matches the data and
        their fit settings, else fitted and saved (``rebuild=True`` forces that).
        ``progress(stage, fraction)`` is called as start-up advances.
        ``build_info`` then holds ``index`` ("loaded" or "built"), ``models_loaded``,
        ``ingest_seconds``, ``load_seconds``, ``build_seconds``, ``total_seconds``,
        ``users_caught_up``, ``database`` (password hidden), ``dialect``, ``cache``
        and, when the cache was not usable, ``cache_problem``. Raises
        :class:`~recommender.errors.DatabaseError` when the database cannot be reached.

        ``background=True``: when learned models must be fitted (the cache lacks
        them), return once user-user, content and search are ready; a thread
        fits the rest (:attr:`preparing` names them), then saves the cache.
        """
        from recommender.serving.startup import start

        parts = start(settings, progress, rebuild=rebuild, defer_learned=background)
        engine = cls(parts)
        if parts.deferred:
            engine._background = BackgroundFit(parts.snapshot.data, parts.params,
                                               {**parts.models, **parts.held}, parts.deferred,
                                               engine.add_models,
                                               engine.save_cache if parts.cache else None)
            engine._background.start()
        return engine

    # ------------------------------------------------------------------ background fit
    @property
    def preparing(self) -> tuple[str, ...]:
        """Algorithms still being fitted in the background (empty once all are served)."""
        background = self._background
        return () if background is None else background.waiting(self._served.models)

    @property
    def background(self) -> BackgroundFit | None:
        """The background fit of the learned models (its ``progress``, ``problem``), or None."""
        return self._background

    def add_models(self, models: Mapping[str, Scorer]) -> None:
        """Serve fitted ``models`` too, all at once (running requests keep the old set)."""
        with self._lock:
            self._served = self._served.with_models(models)

    def _check_ready(self, name: object, collaborative: object, served: Served) -> None:
        if self._background is not None:  # ModelPreparingError for a model not yet published
            self._background.check((name, collaborative), served.models)

    # ------------------------------------------------------------------ read-only views
    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot (replaced whole when users are added)."""
        return self._snapshot

    @property
    def data(self) -> TrainingData:
        """The current catalogue, id maps and rating matrix."""
        return self._snapshot.data

    @property
    def anime(self) -> pd.DataFrame:
        return self._snapshot.data.anime

    @property
    def knn(self) -> UserKNN:
        """The fitted user-user model."""
        return self._knn

    @property
    def search_index(self) -> TitleSearch:
        return self._search

    @property
    def ranker(self) -> Ranker:
        """Ranking with fallback, for callers that rank many lists (offline evaluation)."""
        return self._served.ranker

    @property
    def data_revision(self) -> str | None:
        """The database revision the data was read at (None in memory)."""
        return self._revision

    @property
    def settings(self) -> Settings | None:
        """The settings a database-backed engine was started with (None in memory)."""
        return self._settings

    @property
    def database(self):
        """The SQLAlchemy engine of a database-backed engine (None in memory)."""
        return self._users.database if self._users is not None else None

    @property
    def users(self) -> UserStore:
        """The user store; :class:`InvalidParameterError` for an in-memory engine."""
        if self._users is None:
            raise InvalidParameterError(
                "this engine has no database; build it with RecommenderEngine.from_settings()")
        return self._users

    @property
    def algorithms(self) -> tuple[str, ...]:
        """Names accepted by ``recommend(algorithm=...)``, "random" last."""
        return self._served.algorithms

    @property
    def collaborative_algorithms(self) -> tuple[str, ...]:
        """Algorithms that can be the hybrid's collaborative part."""
        return self._served.ranker.collaborative

    @property
    def default_algorithm(self) -> str:
        """The algorithm ``recommend`` uses when none is named (``params.default_algorithm``).

        When that model is not fitted, the best on validation that is
        (:data:`~recommender.config.VALIDATION_ORDER`), else the hybrid.
        """
        return next((name for name in (self.params.default_algorithm, *VALIDATION_ORDER)
                     if name in self.algorithms), HYBRID)

    @property
    def default_collaborative(self) -> str:
        """The hybrid's collaborative part when none is named (``params.hybrid_collaborative``).

        When that model is not fitted, the best collaborative one on validation that is.
        """
        return next((name for name in (self.params.hybrid_collaborative, *VALIDATION_ORDER)
                     if name in self.collaborative_algorithms), "user-user")

    @property
    def similar_models(self) -> tuple[str, ...]:
        """Models accepted by ``similar_anime(model=...)``."""
        return self._served.similar_models

    @property
    def models(self) -> dict[str, Scorer]:
        """Every fitted scorer, by algorithm name."""
        return dict(self._served.models)

    def scorer(self, name: str) -> Scorer:
        models = self._served.models
        self._check_ready(name, None, self._served)
        choice(name, "algorithm", tuple(models))
        return models[name]

    def user_ids(self) -> np.ndarray:
        """Every known user id (int64, sorted)."""
        return self._snapshot.data.users.ids

    def has_user(self, user_id: object) -> bool:
        """True for a known user id; False for anything else, ids that are not ids included."""
        try:
            requests.user_row(self._snapshot, user_id)
        except KeyError:
            return False
        return True

    def look_for_user(self, user_id: object) -> bool:
        """:meth:`has_user`, asking the database first if the id may be new there."""
        return self.has_user(user_id) or (  # see UserStore.look_for
            self._users is not None and self._users.look_for(self, parse_id(user_id)))

    def stats(self) -> dict:
        """Sizes for the dashboard: users, anime, ratings, matrix and index memory."""
        return sizes(self._snapshot, self._knn)

    def anime_frame(self, item_idx: Iterable[int]) -> pd.DataFrame:
        """Catalogue rows for positions, in the given order."""
        return self._served.frames.catalogue_rows(np.asarray(list(item_idx), dtype=np.int64))

    def anime_by_id(self, anime_ids: Iterable[int]) -> pd.DataFrame:
        """Catalogue rows for known ``anime_ids`` (unknown ids are left out)."""
        ids = [i for i in (parse_id(a) for a in anime_ids) if i is not None]
        pos = self._snapshot.data.items.numbers(np.asarray(ids, dtype=np.int64))
        return self.anime_frame(pos[pos >= 0])

    # ------------------------------------------------------------------ profiles
    def profile(self, user_id: int | None = None, liked=None) -> UserProfile:
        """The profile of a known user, or of a what-if user built from ``liked``."""
        return requests.profile(self._snapshot, user_id, liked)[0]

    def profile_from_liked(self, liked) -> tuple[UserProfile, list]:
        """A what-if profile and the unknown ids dropped from ``liked``."""
        return requests.liked_profile(self._snapshot, liked)

    def scores(self, profile: UserProfile, algorithm: str, *, k: int | None = None) -> Scores:
        """Raw scores of one algorithm (not the hybrid) over the whole catalogue."""
        self.scorer(algorithm)
        return self._served.ranker.score(algorithm, profile, Context(self._snapshot, k))

    # ------------------------------------------------------------------ recommend
    @timed("recommend")
    def recommend(self, user_id: int | None = None, *, liked=None, algorithm: str | None = None,
                  weight: float | None = None, n: int = 10, k: int | None = None,
                  collaborative: str | None = None, exclude: Iterable[int] = (),
                  diversity: float = 0.0) -> pd.DataFrame:
        """Top-``n`` anime for a known user or a what-if list, best first.

        Parameters
        ----------
        user_id : a known user, or None with ``liked``.
        liked : ``{anime_id: rating or None}`` or a list of anime ids (no rating = liked).
        algorithm : "hybrid" or any of :attr:`algorithms` ("user-user", "content",
            "popularity", "mf", "ease", "blend", "ranker", "random"); default
            :attr:`default_algorithm` (the best setting on validation).
        weight : share of the collaborative score in the hybrid, in [0, 1]
            (default: the engine's ``hybrid_weight``).
        n : how many anime (1..500). k : neighbours for user-user (1..500).
        collaborative : the hybrid's collaborative part (see ``collaborative_algorithms``);
            default :attr:`default_collaborative`.
        exclude : anime ids never to return (e.g. already listed elsewhere).
        diversity : in [0, 1]; above 0 the list is re-ranked by maximal marginal
            relevance over genres and franchises (0 = the plain ranking, 1 = as varied
            as possible).

        Returns
        -------
        DataFrame with ``rank``, ``anime_id``, ``name``, ``score`` (higher is
        better; comparable only within one call), ``source`` (the algorithm that
        placed the row), ``reason``, catalogue columns and per-algorithm
        explanation columns, and ``franchise`` (a title-based series number, -1 =
        none), ``franchise_lead`` (first of its franchise in this list) and
        ``franchise_more`` (how many later rows belong to it; see
        :meth:`group_franchises`). ``attrs`` holds ``method`` (what was used),
        ``requested``, ``fallback``, ``unknown_ids``, ``weight`` and ``diversity``.
        """
        snapshot = self._snapshot  # the one snapshot this request reads
        served = self._served  # and the one set of models
        n = requests.count(n, "n", MAX_N)
        k = None if k is None else requests.count(k, "k", MAX_K)
        algorithm = self.default_algorithm if algorithm is None else algorithm
        collaborative = self.default_collaborative if collaborative is None else collaborative
        weight = self.params.hybrid_weight if weight is None else unit_weight(weight)
        diversity = unit_weight(diversity, "diversity")
        self._check_ready(algorithm, collaborative, served)
        choice(algorithm, "algorithm", served.algorithms)
        choice(collaborative, "collaborative algorithm", served.ranker.collaborative)
        profile, unknown = requests.profile(snapshot, user_id, liked)
        ranker = served.ranker
        allowed = ranker.allowed(profile, requests.excluded_positions(snapshot, exclude))
        context = Context(snapshot, k)
        parts = ranker.parts(profile, context, algorithm, collaborative)
        chain = ranker.chain(profile, context, algorithm, parts, weight=weight,
                                   collaborative=collaborative)
        usable = [s for s in chain if (s.values > 0).any()]
        method = usable[0].method if usable else algorithm
        items, source = ranker.top_diverse(chain, n, allowed, diversity)
        with PROFILER.stage("explain"):
            frame = served.frames.recommendations(profile, items, source, chain, parts, algorithm)
        lead, more = franchise_runs(items, self._franchise)
        frame["franchise"] = self._franchise[items]
        frame["franchise_lead"] = lead
        frame["franchise_more"] = more
        frame.attrs.update({"method": method, "requested": algorithm,
                            "fallback": method != algorithm, "unknown_ids": unknown,
                            "weight": weight if algorithm == HYBRID else None,
                            "collaborative": collaborative if algorithm == HYBRID else None,
                            "diversity": diversity})
        return frame

    #: A :meth:`recommend` result with each franchise folded into its first row
    #: (see :func:`recommender.serving.frames.group_franchises`).
    group_franchises = staticmethod(group_franchises)

    # ------------------------------------------------------------------ neighbours
    @timed("neighbours")
    def neighbors(self, user_id: int | None = None, *, liked=None, k: int = 20,
                  exact: bool = False) -> pd.DataFrame:
        """The ``k`` most similar users, most similar first.

        Columns: ``rank``, ``user_id``, ``similarity`` (cosine of the rating rows,
        in (0, 1]), ``shared`` (anime both have watched) and ``n_ratings``.
        ``exact=True`` uses brute force instead of the ANN index.
        """
        snapshot = self._snapshot
        k = requests.count(k, "k", MAX_K)
        if not isinstance(exact, (bool, np.bool_)):
            raise InvalidParameterError(f"exact must be true or false, got {exact!r}")
        profile, _unknown = requests.profile(snapshot, user_id, liked)
        found = self._knn.neighbours(profile, snapshot, k, exact=bool(exact))
        return self._served.frames.neighbours(snapshot, profile, found)

    # ------------------------------------------------------------------ search
    @timed("search")
    def search(self, query: str, limit: int = 10) -> pd.DataFrame:
        """Anime whose titles match ``query``, best first (typos and English titles welcome).

        Columns: ``anime_id``, ``name``, ``english_name``, ``matched_title``,
        ``matched_on`` (which title variant), ``match_score`` (0-100), ``type``,
        ``members``. Adult titles are left out unless ``include_adult``, as in every list.
        """
        limit = requests.count(limit, "limit", MAX_N)
        hidden = None if self.params.include_adult else self._adult
        return self._served.frames.search(self._search.search(query, limit, hidden))

    def resolve_title(self, title: str) -> int:
        """The anime id best matching ``title``; :class:`UnknownAnimeError` when none does."""
        hits = self.search(title, limit=1)
        if hits.empty:
            raise UnknownAnimeError(f"no anime matches {title!r}")
        return int(hits["anime_id"].iloc[0])

    @timed("similar anime")
    def similar_anime(self, anime_id: int, n: int = 10, model: str = "ease") -> pd.DataFrame:
        """Anime most similar to ``anime_id`` by one model, most similar first.

        ``model``: any of :attr:`similar_models` ("ease": what watching this one
        raises most; "mf": cosine of item factors; "content": cosine of TF-IDF
        features). Columns: ``rank``, ``anime_id``, ``name``, ``english_name``,
        ``similarity`` (comparable only within one call), ``genre``, ``type``,
        ``members``. Adult titles are left out unless ``include_adult``.
        """
        n = requests.count(n, "n", MAX_N)
        served = self._served
        self._check_ready(model, None, served)
        choice(model, "similarity model", served.similar_models)
        item = requests.anime_position(self._snapshot, anime_id)
        scorer = served.models[model]
        if not isinstance(scorer, SimilarItems):
            raise TypeError(f"{model} does not offer similar items")
        # Every candidate, so that dropping adult titles afterwards still leaves n.
        found, sims = scorer.similar_items(item, len(self._adult))
        keep = sims > 0
        if not self.params.include_adult:
            keep &= ~self._adult[found]
        return served.frames.similar(found[keep][:n], sims[keep][:n])

    def user_ratings(self, user_id: int) -> pd.DataFrame:
        """A user's anime, best rated first (-1 = watched, not rated, last)."""
        return self._served.frames.user_ratings(requests.user_profile(self._snapshot, user_id))

    # ------------------------------------------------------------------ new users
    def publish_users(self, frame: pd.DataFrame) -> int:
        """Append the users of a ratings frame to memory, all or nothing; returns how many.

        The only way the engine's data changes: the new snapshot (matrix, id
        maps, user-user rows) is built aside and published in one assignment,
        under the engine's lock. Their ids must be above every known id.
        """
        with self._lock:
            before = self._snapshot
            after = grown(before, self._knn, frame)
            self._snapshot = after
        return after.n_users - before.n_users

    def add_user(self, liked, *, source: str = "app") -> int:
        """Save a new user who rated ``liked`` and add them to the index; returns the id.

        ``liked`` is as for :meth:`recommend` (ratings must be whole numbers;
        unknown ids are dropped). The new id is larger than every user id in the
        database (and at least ``recommender.data.database.APP_USER_ID_START``).
        The user and their ratings are written in one transaction, then
        published to memory; if that fails, the database rows are deleted
        again, so neither is kept. Safe with several threads and processes.
        """
        users = self.users
        return users.add(self, requests.saved_ratings(self._snapshot, liked), source=source)

    def catch_up(self, *, min_interval: float = 0.0) -> int:
        """Append users that the database has and memory lacks (ids above the largest known).

        For several processes sharing one database; returns how many were added.
        ``min_interval`` (seconds) skips the database when the last catch-up was
        more recent, so it is cheap to call on every request.
        """
        return self.users.catch_up(self, min_interval=min_interval)

    def save_cache(self) -> None:
        """Persist the current snapshot and every persisted model to the model cache."""
        from recommender.serving.startup import save

        if self._cache is None:
            raise InvalidParameterError("this engine has no model cache")
        with self._lock:
            save(self._cache, self.params, self._snapshot, self._served.models, self._search,
                 self._revision)
