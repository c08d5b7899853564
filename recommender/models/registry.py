"""The one list of algorithms: for each name, how it is built, fitted and persisted.

The engine, the model cache, start-up, evaluation, the CLI and the dashboard
all read :data:`ALGORITHMS`. Adding a model family is one module under
``recommender/models/`` (a scorer and its config dataclass, whose defaults are
the model's defaults) plus one :class:`Algorithm` entry here.

"hybrid" is not an entry: it is the engine's blend of one ``collaborative``
algorithm with content, at a weight chosen per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from recommender.core.profiling import PROFILER
from recommender.core.types import Persistent, Scorer, TrainingData
from recommender.errors import UnknownAlgorithmError
from recommender.models.baselines import Popularity, PopularityConfig, RandomConfig, RandomScorer
from recommender.models.blend import Blend, BlendConfig
from recommender.models.content import ContentConfig, ContentTfidf
from recommender.models.ease import EASE, EASEConfig
from recommender.models.mf import ALSFactorization, MFConfig
from recommender.models.ranker import LearnedRanker, RankerConfig
from recommender.models.user_knn import UserKNN, UserKNNConfig

#: The request-time blend of a collaborative algorithm with content.
HYBRID = "hybrid"

#: ``build(config, fitted)``: an unfitted scorer from its config; ``fitted`` holds the
#: algorithms listed before it, already fitted (a blend combines them).
Builder = Callable[[Any, Mapping[str, Scorer]], Scorer]
#: ``restore(state, data, config)``: a fitted scorer from its ``state_dict()``.
Restorer = Callable[[dict, TrainingData, Any], Scorer]


@dataclass(frozen=True)
class Algorithm:
    """One algorithm the engine offers (see the module docstring)."""

    name: str                    # recommend(algorithm=name)
    label: str                   # how the dashboard names it
    config: type                 # its config dataclass; the defaults live there
    build: Builder
    #: Its fitted state goes into the model cache, and is read back by ``restore``.
    restore: Restorer | None = None
    #: It can be the hybrid's collaborative part.
    collaborative: bool = False
    #: It answers similar_anime(model=name).
    similar_items: bool = False
    #: Slow to fit: fitted only when ``EngineParams.use_models`` is on.
    learned: bool = False
    #: Fitted only when ``EngineParams.use_ranker`` is on (the default): turning it off
    #: saves its fit, about as long as every other model's together.
    opt_in: bool = False
    #: Shown in the dashboard's choices (a baseline like random is not).
    offered: bool = True
    #: Environment prefix of its settings: ANIREC_<ENV>_<FIELD>.
    env: str = ""
    #: Its share of a cold fit, relative to the others, so start-up progress moves with
    #: the time spent (measured on the bundled data, 2 cores: EASE 38 s, ALS 21 s,
    #: content 12 s, user-user 2 s, the rest well under a second).
    fit_cost: float = 0.1
    #: Algorithms its fit reads (their fit settings are part of its cache key); a
    #: restored scorer gets them, fitted, through its ``bind(fitted)``.
    depends: tuple[str, ...] = ()

    @property
    def persisted(self) -> bool:
        return self.restore is not None


ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm("popularity", "Popularity", PopularityConfig,
              lambda config, fitted: Popularity(config), env="POPULARITY"),
    Algorithm("random", "Random", RandomConfig,
              lambda config, fitted: RandomScorer(config), offered=False, env="RANDOM"),
    Algorithm("content", "Content", ContentConfig,
              lambda config, fitted: ContentTfidf(config), restore=ContentTfidf.from_state,
              similar_items=True, env="CONTENT", fit_cost=12.0),
    Algorithm("user-user", "User-user", UserKNNConfig,
              lambda config, fitted: UserKNN(config), restore=UserKNN.from_state,
              collaborative=True, env="USER_USER", fit_cost=4.0),
    Algorithm("mf", "Matrix factorisation", MFConfig,
              lambda config, fitted: ALSFactorization(config),
              restore=ALSFactorization.from_state, collaborative=True, similar_items=True,
              learned=True, env="MF", fit_cost=21.0),
    Algorithm("ease", "EASE", EASEConfig,
              lambda config, fitted: EASE(config), restore=EASE.from_state,
              collaborative=True, similar_items=True, learned=True, env="EASE",
              fit_cost=38.0),
    Algorithm("blend", "Blend", BlendConfig,
              lambda config, fitted: Blend(fitted, config), learned=True, env="BLEND"),
    Algorithm("ranker", "Learned ranker", RankerConfig,
              lambda config, fitted: LearnedRanker(fitted, config),
              restore=LearnedRanker.from_state, collaborative=True, learned=True,
              env="RANKER", depends=("ease", "mf", "user-user", "content"), fit_cost=60.0,
              opt_in=True),
)

_BY_NAME = {a.name: a for a in ALGORITHMS}


def get(name: str) -> Algorithm:
    """The entry of ``name``; :class:`UnknownAlgorithmError` when there is none."""
    if not isinstance(name, str) or name not in _BY_NAME:
        raise UnknownAlgorithmError(
            f"unknown algorithm {name!r}; choose one of {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def default_configs() -> dict[str, Any]:
    """Every algorithm's config at its own defaults, by name."""
    return {a.name: a.config() for a in ALGORITHMS}


def enabled(use_learned: bool, use_opt_in: bool = False) -> tuple[Algorithm, ...]:
    """The algorithms an engine fits, in fitting order."""
    return tuple(a for a in ALGORITHMS
                 if (use_learned or not a.learned) and (use_opt_in or not a.opt_in))


#: ``progress(label, done, share)``: about to fit the algorithm ``label``; ``done`` is the
#: share of this fitting already done, ``share`` the model's share of fitting everything.
FitProgress = Callable[[str, float, float], None]


def fit_all(data: TrainingData, configs: Mapping[str, Any], *, use_learned: bool = True,
            use_opt_in: bool = False,
            restored: Mapping[str, Scorer] | None = None,
            progress: FitProgress | None = None) -> dict[str, Scorer]:
    """Every enabled algorithm fitted on ``data`` with ``configs[name]``, in order.

    Scorers in ``restored`` (read back from the cache, or shared by a tuning
    run) are used as they are instead of being fitted.
    """
    restored = dict(restored or {})
    fitted: dict[str, Scorer] = {}
    algorithms = enabled(use_learned, use_opt_in)
    to_fit = [a for a in algorithms if a.name not in restored]
    total = sum(a.fit_cost for a in to_fit) or 1.0
    first_start = sum(a.fit_cost for a in algorithms)
    done = 0.0
    for algorithm in algorithms:
        if algorithm.name in restored:
            scorer = restored[algorithm.name]
            if algorithm.depends:
                scorer = scorer.bind(fitted)  # type: ignore[attr-defined]
            fitted[algorithm.name] = scorer
            continue
        # Models that fit in milliseconds (popularity, a blend) are not worth a message.
        if progress is not None and algorithm.fit_cost >= 1.0:
            progress(algorithm.label, done / total, algorithm.fit_cost / first_start)
        done += algorithm.fit_cost
        scorer = algorithm.build(configs[algorithm.name], fitted)
        with PROFILER.stage(f"{algorithm.name} fit", memory=algorithm.persisted):
            fitted[algorithm.name] = scorer.fit(data)
    return fitted


def persisted(models: Mapping[str, Scorer]) -> dict[str, Persistent]:
    """The fitted models whose state goes into the cache, by name."""
    out: dict[str, Persistent] = {}
    for name, scorer in models.items():
        if get(name).persisted and isinstance(scorer, Persistent):
            out[name] = scorer
    return out
