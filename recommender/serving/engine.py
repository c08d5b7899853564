"""RecommenderEngine: builds and owns the catalogue, matrix, scorers and search.

This is the public entry point (``from recommender import RecommenderEngine``).
Every argument is validated here, at the boundary, so nothing raises from deep
inside numpy or hnswlib; errors are the package's own (``recommender.errors``).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.config import EngineParams
from recommender.core import scaling as hybrid
from recommender.core.matrix import IdIndex, matrix_from_frame, matrix_nbytes
from recommender.core.profiling import PROFILER, timed
from recommender.core.types import Explanation, Scorer, Scores, TrainingData, UserProfile
from recommender.data.catalog import clean_anime, clean_ratings
from recommender.errors import (
    EmptyInputError,
    InvalidParameterError,
    UnknownAlgorithmError,
    UnknownAnimeError,
    UnknownUserError,
)
from recommender.models.baselines import Popularity, RandomScorer
from recommender.models.content import ContentTfidf
from recommender.models.user_knn import Neighbours, UserKNN
from recommender.serving.search import TitleSearch

_log = logging.getLogger(__name__)

#: Bounds on request sizes: far above any real use, low enough that one call
#: cannot tie up a shared server.
MAX_N = 500
MAX_K = 500
MAX_LIST = 5000
#: A listed anime without a rating counts as liked, with this rating.
LIKED_RATING = 10.0
ADULT_GENRE = "Hentai"


def _positive_int(value, name: str, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        if isinstance(value, Real) and not isinstance(value, bool) and float(value).is_integer():
            value = int(value)
        else:
            raise InvalidParameterError(f"{name} must be a whole number, got {value!r}")
    if not 1 <= value <= upper:
        raise InvalidParameterError(f"{name} must be between 1 and {upper}, got {value}")
    return int(value)


def _weight(value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(float(value)):
        raise InvalidParameterError(f"weight must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise InvalidParameterError(f"weight must be in [0, 1], got {value}")
    return float(value)


class RecommenderEngine:
    """User-user CF, content TF-IDF and their hybrid over one catalogue and rating matrix.

    Build it with :meth:`from_frames` (in memory) or ``from_settings`` (database
    and on-disk cache). Queries are thread-safe; so is :meth:`add_rows`.
    """

    #: Algorithms that blend as the collaborative part of the hybrid.
    collaborative_algorithms: tuple[str, ...] = ("user-user",)

    def __init__(self, data: TrainingData, params: EngineParams,
                 scorers: Mapping[str, Scorer], search: TitleSearch | None = None):
        self.params = params
        self._data = data
        self._scorers = dict(scorers)
        self._write_lock = threading.Lock()
        anime = data.anime
        self._genre_adult = anime["genre"].fillna("").str.contains(ADULT_GENRE).to_numpy()
        self.search_index = search if search is not None else TitleSearch(anime)
        # Catalogue columns as arrays, for building result frames without pandas
        # indexing on every request.
        self._catalogue = {column: anime[column].to_numpy()
                           for column in ("anime_id", "name", "english_name", "type",
                                          "episodes", "genre", "rating", "members")}
        popularity = self._scorers["popularity"]
        self._tie_break = popularity.values_.astype(np.float64)  # type: ignore[attr-defined]
        self.build_info: dict = {}
        #: The database revision the data was read at (``service``; None in memory).
        self.data_revision: str | None = None

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
        params = params or EngineParams()
        with PROFILER.stage("load", memory=True):
            anime = clean_anime(anime_df)
            ratings = clean_ratings(ratings_df)
        data = cls.training_data(anime, ratings)
        return cls.fit(data, params)

    @staticmethod
    def training_data(anime: pd.DataFrame, ratings: pd.DataFrame) -> TrainingData:
        """Id maps and the rating matrix for clean frames (catalogue sorted by anime_id)."""
        with PROFILER.stage("matrix", memory=True):
            anime = anime.sort_values("anime_id").reset_index(drop=True)
            items = IdIndex(anime["anime_id"].to_numpy(np.int64))
            unknown = items.numbers(ratings["anime_id"].to_numpy()) < 0
            if unknown.any():
                _log.warning("dropping %d ratings of anime not in the catalogue",
                             int(unknown.sum()))
                ratings = ratings[~unknown]
            users = IdIndex.from_ids(ratings["user_id"].to_numpy())
            matrix = matrix_from_frame(ratings, users, items)
        return TrainingData(anime=anime, users=users, items=items, ratings=matrix)

    @classmethod
    def fit(cls, data: TrainingData, params: EngineParams,
            knn: UserKNN | None = None,
            models: Mapping[str, Scorer] | None = None,
            search: TitleSearch | None = None) -> RecommenderEngine:
        """Fit every scorer on ``data``; a restored ``knn`` and ``models`` are used as is.

        ``models`` maps scorer names ("content", "mf", "ease") to fitted scorers,
        e.g. read back from the on-disk cache; the rest are fitted here.
        ``search`` is a title index already built over ``data.anime``.
        """
        scorers: dict[str, Scorer] = {}
        with PROFILER.stage("popularity"):
            scorers["popularity"] = Popularity(params.like_threshold).fit(data)
            scorers["random"] = RandomScorer(params.random_state).fit(data)
        restored = dict(models or {})
        if "content" in restored:
            scorers["content"] = restored.pop("content")
        else:
            with PROFILER.stage("content", memory=True):
                scorers["content"] = ContentTfidf(
                    like_threshold=params.like_threshold, use_synopsis=params.use_synopsis,
                    use_type=params.use_type, synopsis_weight=params.synopsis_weight,
                    type_weight=params.type_weight,
                ).fit(data)
        if knn is None:
            with PROFILER.stage("user-user fit", memory=True):
                knn = cls.make_knn(params).fit(data)
        scorers["user-user"] = knn
        engine = cls(data, params, scorers, search)
        if params.use_models:
            engine._fit_models(restored)
        return engine

    # -- learned models: "mf", "ease" and the "blend" (recommender/mf.py, ease.py, blend.py)
    @staticmethod
    def make_models(params: EngineParams) -> dict[str, Scorer]:
        """Unfitted "mf" and "ease" scorers with the engine's parameters."""
        from recommender.models.ease import EASE
        from recommender.models.mf import ALSFactorization

        return {
            "mf": ALSFactorization(
                factors=params.mf_factors, regularization=params.mf_regularization,
                alpha=params.mf_alpha, iterations=params.mf_iterations,
                watched_value=params.mf_watched_value, bm25=params.mf_bm25,
                dislike_below=params.mf_dislike_below, random_state=params.random_state),
            "ease": EASE(lam=params.ease_lambda, min_support=params.ease_min_support,
                         weighting=params.ease_weighting,
                         dislike_below=params.ease_dislike_below),
        }

    def _fit_models(self, restored: Mapping[str, Scorer]) -> None:
        from recommender.models.blend import Blend, parse_weights

        for name, scorer in self.make_models(self.params).items():
            if name in restored:
                scorer = restored[name]
            else:
                with PROFILER.stage(f"{name} fit", memory=True):
                    scorer.fit(self._data)
            self.register(scorer, collaborative=True)
        self.register(Blend(self._scorers, parse_weights(self.params.blend_weights)))

    #: Fitted scorers saved in the on-disk cache beside the user-user index.
    PERSISTED_MODELS = ("content", "mf", "ease")

    @property
    def models(self) -> dict[str, Scorer]:
        """Fitted scorers by name that persist (each has ``state_dict()``/``from_state``)."""
        return {n: self._scorers[n] for n in self.PERSISTED_MODELS if n in self._scorers}

    @timed("similar anime")
    def similar_anime(self, anime_id: int, n: int = 10, model: str = "ease") -> pd.DataFrame:
        """Anime most similar to ``anime_id`` by one model, most similar first.

        ``model``: "ease" (the anime that watching this one raises most),
        "mf" (cosine of item factors) or "content" (cosine of TF-IDF features).
        Columns: ``rank``, ``anime_id``, ``name``, ``english_name``,
        ``similarity`` (comparable only within one call), ``genre``, ``type``,
        ``members``. Adult titles are left out unless ``include_adult``.
        """
        n = _positive_int(n, "n", MAX_N)
        choices = [m for m in ("ease", "mf", "content") if m in self._scorers]
        if model not in choices:
            raise UnknownAlgorithmError(
                f"unknown similarity model {model!r}; choose one of {', '.join(choices)}")
        if isinstance(anime_id, bool) or not isinstance(anime_id, (Integral, np.integer)):
            raise UnknownAnimeError(f"anime {anime_id!r} is not an anime id")
        item = self._data.items.number(int(anime_id))
        if item < 0:
            raise UnknownAnimeError(f"unknown anime {anime_id}")
        scorer = self._scorers[model]
        # Every candidate, so that dropping adult titles afterwards still leaves n.
        found, sims = scorer.similar_items(item, len(self._data.items))  # type: ignore[attr-defined]
        keep = sims > 0
        if not self.params.include_adult:
            keep &= ~self._genre_adult[found]
        found, sims = found[keep][:n], sims[keep][:n]
        anime = self.anime_frame(found)
        return pd.DataFrame({
            "rank": np.arange(1, len(found) + 1),
            "anime_id": anime["anime_id"].to_numpy(),
            "name": anime["name"].to_numpy(),
            "english_name": anime["english_name"].to_numpy(),
            "similarity": sims.astype(np.float32),
            "genre": anime["genre"].to_numpy(),
            "type": anime["type"].to_numpy(),
            "members": anime["members"].to_numpy(),
        })
    # -- end of learned models

    @staticmethod
    def make_knn(params: EngineParams) -> UserKNN:
        return UserKNN(
            n_neighbors=params.n_neighbors, dim=params.dim, n_candidates=params.n_candidates,
            m=params.hnsw_m, ef_construction=params.hnsw_ef_construction, ef=params.hnsw_ef,
            like_threshold=params.like_threshold, watched_weight=params.watched_weight,
            damping=params.damping, random_state=params.random_state,
            svd_n_iter=params.svd_n_iter, index_threads=params.index_threads,
            posting_budget=params.posting_budget,
            centre=params.centre_ratings, disliked_weight=params.disliked_weight,
            similarity_power=params.similarity_power,
        )

    # ------------------------------------------------------------------ read-only views
    @property
    def data(self) -> TrainingData:
        """The current catalogue, id maps and rating matrix (replaced whole on add)."""
        return self._data

    @property
    def anime(self) -> pd.DataFrame:
        return self._data.anime

    @property
    def knn(self) -> UserKNN:
        return self._scorers["user-user"]  # type: ignore[return-value]

    @property
    def algorithms(self) -> tuple[str, ...]:
        """Names accepted by ``recommend(algorithm=...)``."""
        return tuple(n for n in self._scorers if n != "random") + ("hybrid", "random")

    def scorer(self, name: str) -> Scorer:
        if name not in self._scorers:
            raise UnknownAlgorithmError(
                f"unknown algorithm {name!r}; choose one of {', '.join(self.algorithms)}"
            )
        return self._scorers[name]

    def register(self, scorer: Scorer, *, collaborative: bool = False) -> None:
        """Add a fitted scorer under ``scorer.name`` (optionally as a hybrid CF part)."""
        self._scorers[scorer.name] = scorer
        if collaborative and scorer.name not in self.collaborative_algorithms:
            self.collaborative_algorithms = self.collaborative_algorithms + (scorer.name,)

    def user_ids(self) -> np.ndarray:
        """Every known user id (int64, sorted)."""
        return self._data.users.ids

    def has_user(self, user_id: int) -> bool:
        return self._data.users.number(int(user_id)) >= 0

    def stats(self) -> dict:
        """Sizes for the dashboard: users, anime, ratings, matrix and index memory."""
        data = self._data
        n_users, n_items = data.ratings.shape
        return {
            "users": int(n_users),
            "anime": int(n_items),
            "rated_anime": int((np.diff(data.ratings.tocsc().indptr) > 0).sum()),
            "ratings": int(data.ratings.nnz),
            "watched_unrated": int((data.ratings.data < 0).sum()),
            "matrix_bytes": matrix_nbytes(data.ratings),
            "dense_bytes": int(n_users) * int(n_items) * 4,
            "index_elements": len(self.knn.index_),
            "index_bytes": self.knn.index_.nbytes(),
            "vector_dim": int(self.knn.components_.shape[0]),
        }

    def anime_frame(self, item_idx: Iterable[int]) -> pd.DataFrame:
        """Catalogue rows for positions, in the given order."""
        positions = np.asarray(list(item_idx), dtype=np.int64)
        return self._data.anime.iloc[positions].reset_index(drop=True)

    def anime_by_id(self, anime_ids: Iterable[int]) -> pd.DataFrame:
        """Catalogue rows for known ``anime_ids`` (unknown ids are left out)."""
        pos = self._data.items.numbers(np.asarray(list(anime_ids), dtype=np.int64))
        return self.anime_frame(pos[pos >= 0])

    # ------------------------------------------------------------------ users
    def profile(self, user_id: int | None = None, liked=None) -> UserProfile:
        """The profile of a known user, or of a what-if user built from ``liked``."""
        if (user_id is None) == (liked is None):
            raise InvalidParameterError("give exactly one of user_id or liked")
        if user_id is not None:
            return self._user_profile(user_id)
        profile, _unknown = self.profile_from_liked(liked)
        return profile

    def _user_profile(self, user_id) -> UserProfile:
        if isinstance(user_id, bool) or not isinstance(user_id, (Integral, np.integer)):
            if isinstance(user_id, (Real, str)):
                try:
                    as_int = int(str(user_id).strip())
                except ValueError:
                    raise UnknownUserError(f"user {user_id!r} is not a user id") from None
                user_id = as_int
            else:
                raise UnknownUserError(f"user {user_id!r} is not a user id")
        data = self._data
        row = data.users.number(int(user_id))
        if row < 0:
            raise UnknownUserError(f"unknown user {user_id}")
        start, end = data.ratings.indptr[row], data.ratings.indptr[row + 1]
        return UserProfile(
            item_idx=data.ratings.indices[start:end].astype(np.int64),
            ratings=data.ratings.data[start:end].astype(np.float32),
            user_idx=row, user_id=int(user_id),
        )

    def profile_from_liked(self, liked) -> tuple[UserProfile, list]:
        """A what-if profile from ``{anime_id: rating or None}`` or a list of ids.

        No rating means liked (counted as 10). Unknown ids are dropped and
        returned; a list with nothing known is an :class:`EmptyInputError`.
        """
        pairs = self._liked_pairs(liked)
        items = self._data.items
        ids = np.array([p[0] for p in pairs], dtype=np.int64)
        ratings = np.array([p[1] for p in pairs], dtype=np.float32)
        pos = items.numbers(ids)
        unknown = [int(i) for i in ids[pos < 0]]
        keep = pos >= 0
        if not keep.any():
            raise EmptyInputError(
                f"none of the listed anime are in the catalogue (unknown ids: {unknown[:10]})"
            )
        pos, ratings = pos[keep], ratings[keep]
        # A title listed twice keeps its last rating.
        _, last = np.unique(pos[::-1], return_index=True)
        sel = len(pos) - 1 - last
        return UserProfile(item_idx=pos[sel], ratings=ratings[sel]), unknown

    @staticmethod
    def _liked_pairs(liked) -> list[tuple[int, float]]:
        if isinstance(liked, Mapping):
            raw = list(liked.items())
        elif isinstance(liked, (str, bytes)) or not isinstance(liked, Iterable):
            raise InvalidParameterError(
                "liked must be a mapping {anime_id: rating} or a list of ids")
        else:
            raw = [(x, None) for x in liked]
        if not raw:
            raise EmptyInputError("the list of liked anime is empty")
        if len(raw) > MAX_LIST:
            raise InvalidParameterError(f"the list has {len(raw)} anime; at most {MAX_LIST}")
        pairs = []
        for anime_id, rating in raw:
            if isinstance(anime_id, bool) or not isinstance(anime_id, (Integral, np.integer)):
                try:
                    anime_id = int(str(anime_id).strip())
                except ValueError:
                    raise InvalidParameterError(
                        f"anime id {anime_id!r} is not a whole number") from None
            if rating is None:
                value = LIKED_RATING
            elif isinstance(rating, bool) or not isinstance(rating, Real):
                raise InvalidParameterError(
                    f"rating {rating!r} of anime {anime_id} is not a number")
            else:
                value = float(rating)
                if math.isnan(value) or not (value == -1 or 1 <= value <= 10):
                    raise InvalidParameterError(
                        f"rating {rating!r} of anime {anime_id} must be -1 (watched) or 1..10"
                    )
            pairs.append((int(anime_id), value))
        return pairs

    # ------------------------------------------------------------------ scoring
    def scores(self, profile: UserProfile, algorithm: str, *, k: int | None = None) -> Scores:
        """Raw scores of one algorithm (not hybrid) for a profile, over the whole catalogue."""
        scorer = self.scorer(algorithm)
        with PROFILER.stage(algorithm):
            if algorithm == "user-user":
                return scorer.score(profile, k)  # type: ignore[call-arg]
            return scorer.score(profile)

    def allowed_mask(self, profile: UserProfile, exclude: Iterable[int] = ()) -> np.ndarray:
        """Items that may be recommended: not watched (-1 included), not excluded, not adult."""
        allowed = np.ones(len(self._data.items), dtype=bool)
        allowed[profile.item_idx] = False
        extra = self._data.items.numbers(np.asarray(list(exclude), dtype=np.int64))
        allowed[extra[extra >= 0]] = False
        if not self.params.include_adult:
            allowed &= ~self._genre_adult
        return allowed

    def rank(self, chain: list[Scores], n: int,
             allowed: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Top ``n`` from the first scores in ``chain``, filled up from the next ones.

        Returns positions and, per position, the index in ``chain`` that supplied it.
        """
        picked: list[np.ndarray] = []
        source: list[int] = []
        allowed = allowed.copy()
        for level, scores in enumerate(chain):
            need = n - sum(len(p) for p in picked)
            if need <= 0:
                break
            top = hybrid.top_n(scores.values, need, allowed=allowed, tie_break=self._tie_break)
            allowed[top] = False
            picked.append(top)
            source.extend([level] * len(top))
        items = np.concatenate(picked) if picked else np.empty(0, np.int64)
        return items.astype(np.int64), source

    def score_parts(self, profile: UserProfile, algorithm: str, *,
                    collaborative: str = "user-user", k: int | None = None) -> dict[str, Scores]:
        """The raw scores ``algorithm`` needs for ``profile`` (both parts for "hybrid")."""
        parts: dict[str, Scores] = {}
        if algorithm in ("hybrid", *self.collaborative_algorithms):
            cf_name = collaborative if algorithm == "hybrid" else algorithm
            parts[cf_name] = self.scores(profile, cf_name, k=k)
        if algorithm in ("hybrid", "content"):
            parts["content"] = self.scores(profile, "content")
        if algorithm not in parts and algorithm != "hybrid":
            parts[algorithm] = self.scores(profile, algorithm)
        return parts

    def fallback_chain(self, profile: UserProfile, algorithm: str, parts: Mapping[str, Scores],
                       *, weight: float, collaborative: str = "user-user") -> list[Scores]:
        """The scores :meth:`rank` walks for ``algorithm``, best source first.

        The requested scores (the blend for "hybrid") come first, then content, then
        popularity, so a user with no usable neighbours (or too few candidates) still
        gets ``n`` rows. Scores missing from ``parts`` are computed; offline evaluation
        passes them all precomputed so one scoring serves every weight.
        """
        def part(name: str) -> Scores:
            return parts[name] if name in parts else self.scores(profile, name)

        if algorithm == "hybrid":
            cf, content = parts[collaborative], part("content")
            with PROFILER.stage("blend"):
                blended = hybrid.blend(cf.values, content.values, weight)
            primary = Scores(blended.astype(np.float64), "hybrid",
                             details={"cf_score": hybrid.scale_to_unit(cf.values),
                                      "content_score": hybrid.scale_to_unit(content.values)})
        else:
            primary = parts[algorithm]
        chain = [primary]
        if algorithm not in ("content", "popularity", "random"):
            chain.append(part("content"))
        if algorithm != "popularity":
            chain.append(part("popularity"))
        return chain

    @timed("recommend")
    def recommend(self, user_id: int | None = None, *, liked=None, algorithm: str = "hybrid",
                  weight: float | None = None, n: int = 10, k: int | None = None,
                  collaborative: str = "user-user", exclude: Iterable[int] = ()) -> pd.DataFrame:
        """Top-``n`` anime for a known user or a what-if list, best first.

        Parameters
        ----------
        user_id : a known user, or None with ``liked``.
        liked : ``{anime_id: rating or None}`` or a list of anime ids (no rating = liked).
        algorithm : "user-user", "content", "hybrid", "popularity" or "random"
            (and any registered scorer: "mf", "ease" and "blend" by default).
        weight : share of the collaborative score in the hybrid, in [0, 1]
            (default: the engine's ``hybrid_weight``).
        n : how many anime (1..500). k : neighbours for user-user (1..500).
        collaborative : the hybrid's collaborative part: "user-user" (default),
            "mf" or "ease" (see ``collaborative_algorithms``).
        exclude : anime ids never to return (e.g. already listed elsewhere).

        Returns
        -------
        DataFrame with ``rank``, ``anime_id``, ``name``, ``score`` (higher is
        better; comparable only within one call), ``source`` (the algorithm that
        placed the row), ``reason``, catalogue columns and per-algorithm
        explanation columns. ``attrs`` holds ``method`` (what was used),
        ``requested``, ``fallback`` and ``unknown_ids``.
        """
        n = _positive_int(n, "n", MAX_N)
        k = None if k is None else _positive_int(k, "k", MAX_K)
        weight = self.params.hybrid_weight if weight is None else _weight(weight)
        if algorithm != "hybrid":
            self.scorer(algorithm)
        if collaborative not in self.collaborative_algorithms:
            raise UnknownAlgorithmError(
                f"unknown collaborative algorithm {collaborative!r}; choose one of "
                f"{', '.join(self.collaborative_algorithms)}"
            )
        unknown: list = []
        if (user_id is None) == (liked is None):
            raise InvalidParameterError("give exactly one of user_id or liked")
        if user_id is not None:
            profile = self._user_profile(user_id)
        else:
            profile, unknown = self.profile_from_liked(liked)
        allowed = self.allowed_mask(profile, exclude)

        parts = self.score_parts(profile, algorithm, collaborative=collaborative, k=k)
        chain = self.fallback_chain(profile, algorithm, parts, weight=weight,
                                    collaborative=collaborative)
        usable = [s for s in chain if (s.values > 0).any()]
        method = usable[0].method if usable else algorithm
        items, source = self.rank(chain, n, allowed)
        with PROFILER.stage("explain"):
            frame = self._frame(profile, items, source, chain, parts, weight, algorithm)
        frame.attrs.update({"method": method, "requested": algorithm,
                            "fallback": method != algorithm, "unknown_ids": unknown,
                            "weight": weight if algorithm == "hybrid" else None})
        return frame

    def _frame(self, profile: UserProfile, items: np.ndarray, source: list[int],
               chain: list[Scores], parts: dict[str, Scores], weight: float,
               algorithm: str) -> pd.DataFrame:
        # Columns are gathered in a dict and the frame is built once: adding
        # columns one by one to a DataFrame costs more than the scoring.
        catalogue = self._catalogue
        scores = np.array([chain[s].values[i] for s, i in zip(source, items)], dtype=np.float64)
        columns: dict[str, object] = {
            "rank": np.arange(1, len(items) + 1),
            "anime_id": catalogue["anime_id"][items],
            "name": catalogue["name"][items],
            "english_name": catalogue["english_name"][items],
            "score": scores.astype(np.float32),
            "source": [chain[s].method for s in source],
        }
        reasons: list[list[str]] = [[] for _ in items]
        # Explain each row by every part that had evidence for it.
        explainers = [(name, s) for name, s in parts.items()]
        if not any(name == "popularity" for name, _ in explainers):
            explainers.append(("popularity", chain[-1]))
        for name, s in explainers:
            has = s.values[items] > 0 if len(items) else np.zeros(0, bool)
            if name == "popularity" and len(explainers) > 1:
                # Popularity only explains rows nothing personal placed.
                has &= np.array([chain[src].method == "popularity" for src in source], dtype=bool)
            if not has.any():
                continue
            explained: Explanation = self._scorers[name].explain(profile, items[has], s)
            for row, text in zip(np.flatnonzero(has), explained.reasons):
                reasons[row].append(text)
            columns.update(self._explanation_columns(len(items), has, explained))
            if name in ("user-user", "content") and name in s.method:
                for key, values in s.details.items():
                    columns[key] = values[items]
        if algorithm == "hybrid":
            for key, values in chain[0].details.items():
                columns[key] = values[items].astype(np.float32)
        columns["reason"] = ["; ".join(r) if r else "" for r in reasons]
        for column, target in (("type", "type"), ("episodes", "episodes"), ("genre", "genre"),
                               ("rating", "community_rating"), ("members", "members")):
            columns[target] = catalogue[column].take(items)
        return pd.DataFrame(columns)

    def _explanation_columns(self, n_rows: int, has: np.ndarray,
                             explained: Explanation) -> dict[str, object]:
        users, items = self._data.users.ids, self._data.items.ids
        names = self._catalogue["name"]
        columns: dict[str, object] = {}
        for key, values in explained.columns.items():
            full: list = [[] if key == "neighbour_idx" else None for _ in range(n_rows)]
            for row, value in zip(np.flatnonzero(has), values):
                full[row] = value
            if key == "neighbour_idx":
                columns["neighbours"] = [[int(users[u]) for u in v] for v in full]
            elif key == "because_items":  # learned models: the user's top contributors
                columns["because_anime_ids"] = [[int(items[i]) for i in v or []] for v in full]
                columns["because_names"] = [[str(names[i]) for i in v or []] for v in full]
            elif key == "because_idx":
                columns["because_anime_id"] = pd.array(
                    [None if v is None else int(items[v]) for v in full], dtype="Int64")
                columns["because_name"] = [None if v is None else names[v] for v in full]
            else:
                columns[key] = full
        return columns

    # ------------------------------------------------------------------ neighbours
    def _neighbours(self, user_id, liked, k, exact) -> tuple[UserProfile, Neighbours]:
        k = _positive_int(k, "k", MAX_K)
        profile = self.profile(user_id, liked)
        return profile, self.knn.neighbors(profile, k, exact=exact)

    @timed("neighbours")
    def neighbors(self, user_id: int | None = None, *, liked=None, k: int = 20,
                  exact: bool = False) -> pd.DataFrame:
        """The ``k`` most similar users, most similar first.

        Columns: ``user_id``, ``similarity`` (cosine of centred rating rows, in
        (0, 1]) and ``shared`` (anime both have watched). ``exact=True`` uses
        brute force instead of the ANN index.
        """
        profile, neigh = self._neighbours(user_id, liked, k, exact)
        data = self._data
        mine = np.zeros(data.ratings.shape[1], dtype=bool)
        mine[profile.item_idx] = True
        sub = data.ratings[neigh.user_idx] if len(neigh.user_idx) else None
        shared = (np.add.reduceat(mine[sub.indices], sub.indptr[:-1]) if sub is not None
                  and sub.nnz else np.zeros(len(neigh.user_idx), dtype=np.int64))
        # reduceat repeats a value for empty rows; an empty row shares nothing.
        if sub is not None:
            shared = np.where(np.diff(sub.indptr) > 0, shared, 0)
        return pd.DataFrame({
            "rank": np.arange(1, len(neigh.user_idx) + 1),
            "user_id": data.users.ids[neigh.user_idx],
            "similarity": neigh.similarity,
            "shared": np.asarray(shared, dtype=np.int64),
            "n_ratings": np.diff(data.ratings.indptr)[neigh.user_idx] if len(neigh.user_idx)
            else np.zeros(0, dtype=np.int64),
        })

    # ------------------------------------------------------------------ search
    @timed("search")
    def search(self, query: str, limit: int = 10) -> pd.DataFrame:
        """Anime whose titles match ``query``, best first (typos and English titles welcome).

        Columns: ``anime_id``, ``name``, ``english_name``, ``matched_title``,
        ``matched_on`` (which title variant), ``match_score`` (0-100), ``members``.
        """
        limit = _positive_int(limit, "limit", MAX_N)
        hits = self.search_index.search(query, limit)
        items = hits.item_idx
        catalogue = self._catalogue
        return pd.DataFrame({
            "anime_id": catalogue["anime_id"][items],
            "name": catalogue["name"][items],
            "english_name": catalogue["english_name"][items],
            "matched_title": hits.matched_title,
            "matched_on": hits.matched_on,
            "match_score": hits.match_score,
            "type": catalogue["type"][items],
            "members": catalogue["members"][items],
        })

    def resolve_title(self, title: str) -> int:
        """The anime id best matching ``title``; :class:`UnknownAnimeError` when none does."""
        hits = self.search(title, limit=1)
        if hits.empty:
            raise UnknownAnimeError(f"no anime matches {title!r}")
        return int(hits["anime_id"].iloc[0])

    # ------------------------------------------------------------------ users' lists
    def user_ratings(self, user_id: int) -> pd.DataFrame:
        """A user's anime, best rated first (-1 = watched, not rated, last)."""
        profile = self._user_profile(user_id)
        anime = self.anime_frame(profile.item_idx)
        frame = anime[["anime_id", "name", "english_name", "genre", "type", "members"]].copy()
        frame.insert(2, "rating", profile.ratings.astype(np.int16))
        return frame.sort_values(["rating", "members"], ascending=False, kind="stable").reset_index(
            drop=True
        )

    # ------------------------------------------------------------------ growth
    def add_rows(self, user_ids: np.ndarray, rows: sp.csr_matrix) -> None:
        """Append new users (ids larger than every known id) with raw rating rows.

        Publishes the matrix and the index first, the id map last, so a reader
        never sees a user id whose row or index entry is missing.
        """
        user_ids = np.asarray(user_ids, dtype=np.int64)
        with self._write_lock:
            data = self._data
            self.knn.add_rows(rows)
            # The user-user state holds the grown matrix; share it rather than copy it.
            self._data = replace(data, users=data.users.appended(user_ids),
                                 ratings=self.knn.state.ratings)

    # ------------------------------------------------------------------ database and cache
    #: Set by :meth:`from_settings`: the SQLAlchemy engine, the settings and the model cache.
    database = None
    settings = None
    cache = None
    #: Test hook: called with the new user id after the database write and before the
    #: index add in :meth:`add_user`; raising there must leave neither.
    _before_index_add = None

    @classmethod
    def from_settings(cls, settings=None, progress=None, *,
                      rebuild: bool = False) -> RecommenderEngine:
        """The engine over the database in ``settings.database_url``, with the on-disk cache.

        ``settings`` defaults to :func:`recommender.config.load_settings` (env and
        ``.env``). An empty database first receives the bundled data. The
        user-user index is loaded from ``settings.cache_dir`` when its manifest
        matches the data and parameters, else rebuilt and saved
        (``rebuild=True`` forces that). ``progress(stage, fraction)`` is called as
        start-up advances. ``build_info`` then holds ``index`` ("loaded" or
        "built"), ``ingest_seconds``, ``load_seconds``, ``build_seconds``,
        ``total_seconds``, ``users_caught_up``, ``database`` (password hidden),
        ``dialect``, ``cache`` and, when the cache was not usable, ``cache_problem``.
        Raises :class:`~recommender.errors.DatabaseError` when the database
        cannot be reached.
        """
        from recommender.serving.startup import build_engine

        return build_engine(settings, progress, rebuild=rebuild, engine_class=cls)

    def _require_database(self):
        if self.database is None:
            raise InvalidParameterError(
                "this engine has no database; build it with RecommenderEngine.from_settings()")
        return self.database

    def add_user(self, liked, *, source: str = "app") -> int:
        """Save a new user who rated ``liked`` and add them to the index; returns the id.

        ``liked`` is as for :meth:`recommend` (ratings must be whole numbers;
        unknown ids are dropped). The new id is larger than every user id in the
        database (and at least ``recommender.data.database.APP_USER_ID_START``). The user
        and their ratings are written in one transaction, then appended to the
        matrix and the index; if that fails, the database rows are deleted
        again, so neither is kept. Safe with several threads and processes.
        """
        from recommender.serving.startup import add_user

        self._require_database()
        return add_user(self, liked, source=source)

    def catch_up(self, *, min_interval: float = 0.0) -> int:
        """Append users that the database has and memory lacks (ids above the largest known).

        For several processes sharing one database; returns how many were added.
        ``min_interval`` (seconds) skips the database when the last catch-up was
        more recent, so it is cheap to call on every request.
        """
        from recommender.serving.startup import catch_up

        self._require_database()
        return catch_up(self, min_interval=min_interval)
