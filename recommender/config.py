"""Settings, read once from the environment (and ``.env``), and the engine's parameters.

Each model's hyper-parameters live once, in the config dataclass beside the
model (``recommender/models/``); :class:`EngineParams` holds one of each, by
algorithm name, plus the serving settings, and refers to those defaults rather
than copying them. Every field can be set from the environment:

- serving settings as ``ANIREC_<FIELD>``, e.g. ``ANIREC_HYBRID_WEIGHT=0.5``;
- a model's as ``ANIREC_<MODEL>_<FIELD>``, e.g. ``ANIREC_USER_USER_N_NEIGHBOURS=100``,
  ``ANIREC_EASE_L2=200`` or ``ANIREC_BLEND_WEIGHTS=ease:1,content:0.1``
  (``<MODEL>`` is the registry entry's ``env``).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from recommender.core.params import (
    config_dict,
    config_from_dict,
    field_type,
    fit_key,
    parse_value,
)
from recommender.core.paths import ROOT
from recommender.core.redact import redact_url
from recommender.errors import ConfigurationError
from recommender.models import registry

_log = logging.getLogger(__name__)

#: Settings read from ANIREC_* that are not engine parameters.
OTHER_SETTINGS = frozenset({"ANIREC_CACHE_DIR", "ANIREC_TUNE_USERS", "ANIREC_EVAL_CACHE_DIR",
                            "ANIREC_TEST_POSTGRES_URL", "ANIREC_BENCH_POSTGRES",
                            "ANIREC_BACKGROUND_FIT"})


#: The learned algorithms best first on validation (NDCG@10 above): a default that is
#: not fitted (``use_ranker`` off, or still being fitted in the background) falls back
#: to the first of these that is, for the default algorithm and the hybrid's part
#: alike; with none fitted, to the hybrid over user-user.
VALIDATION_ORDER: tuple[str, ...] = ("ranker", "blend", "ease", "mf")


def _default_models() -> Mapping[str, Any]:
    return MappingProxyType(registry.default_configs())


@dataclass(frozen=True)
class EngineParams:
    """The serving settings and every model's configuration.

    ``models`` maps each algorithm name to its config; names left out get the
    model's own defaults. Use :meth:`model` to read one and :meth:`with_model`
    to change one. Only a model's *fit* fields key its cached state, so a
    serving setting or a query-time field never refits anything.
    """

    # The defaults below are the settings best on the VALIDATION split (never the test
    # split): `python -m recommender evaluate --users 1000 --split validation` (seed 0,
    # NDCG@10; README "Evaluation"). The figure that chose each is beside it.
    #: What ``recommend()`` uses when no algorithm is named (and the dashboard's first
    #: view): hybrid (ranker, w=0.9) 0.3053 (1.041x EASE, 95% interval [1.010, 1.071]) >
    #: ranker 0.3037 (1.035x) > blend 0.2944 > ease 0.2934 > mf 0.2696 > user-user
    #: 0.2146. When it is not fitted, the first of :data:`VALIDATION_ORDER` that is.
    default_algorithm: str = "hybrid"
    #: The hybrid's collaborative part when none is named: at its best weight the hybrid
    #: scores 0.3053 with the ranker, 0.2944 with EASE and 0.2316 with user-user.
    hybrid_collaborative: str = "ranker"
    #: Share of the collaborative part in the hybrid (the dashboard's first value): with
    #: the ranker part, w=0.8 0.3030, w=0.9 0.3053, w=1 (the ranker alone) 0.3037.
    hybrid_weight: float = 0.9
    #: Recommend adult (Hentai) titles too.
    include_adult: bool = False
    #: Fit the learned models (mf, ease, blend, ranker); off makes start-up faster.
    use_models: bool = True
    #: Fit the learned two-stage ranker too (needs ``use_models``). It is the hybrid's
    #: best part on validation (above); off saves its fit (about as long as every other
    #: model together) and the hybrid falls back to EASE.
    use_ranker: bool = True
    models: Mapping[str, Any] = field(default_factory=_default_models)

    def __post_init__(self) -> None:
        if self.default_algorithm != registry.HYBRID and \
                self.default_algorithm not in registry.names():
            raise ConfigurationError(f"default_algorithm {self.default_algorithm!r} is not "
                                     f"hybrid or one of {', '.join(registry.names())}")
        if not registry.get(self.hybrid_collaborative).collaborative:
            raise ConfigurationError(f"{self.hybrid_collaborative!r} cannot be the hybrid's "
                                     "collaborative part")
        given = dict(self.models)
        unknown = sorted(set(given) - set(registry.names()))
        if unknown:
            raise ConfigurationError(f"no algorithm named {', '.join(unknown)}")
        merged = registry.default_configs()
        for name, config in given.items():
            if not isinstance(config, registry.get(name).config):
                raise ConfigurationError(f"the config of {name!r} must be a "
                                         f"{registry.get(name).config.__name__}")
            merged[name] = config
        object.__setattr__(self, "models", MappingProxyType(merged))

    def model(self, name: str) -> Any:
        """The config of algorithm ``name``."""
        registry.get(name)
        return self.models[name]

    def with_model(self, name: str, **changes) -> EngineParams:
        """A copy with fields of one model's config changed."""
        return replace(self, models={**self.models, name: replace(self.model(name), **changes)})

    def fit_key(self, name: str) -> dict[str, Any]:
        """What the fitted state of ``name`` depends on (its cache key).

        A model fitted on top of others (the ranker) depends on their fit
        settings too, recorded as ``"<model>.<field>"``.
        """
        key = fit_key(self.model(name))
        for dependency in registry.get(name).depends:
            key.update({f"{dependency}.{k}": v for k, v in self.fit_key(dependency).items()})
        return key

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the serving fields and each model's config."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)
                               if f.name != "models"}
        out["models"] = {name: config_dict(config) for name, config in self.models.items()}
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EngineParams:
        """The inverse of :meth:`as_dict` (checked: a malformed dict is a ConfigurationError)."""
        values = dict(values)
        raw_models = values.pop("models", {}) or {}
        if not isinstance(raw_models, Mapping):
            raise ConfigurationError("models must be a mapping")
        models = {name: config_from_dict(registry.get(name).config, dict(config))
                  for name, config in raw_models.items()}
        serving = {f.name for f in fields(cls)} - {"models"}
        if set(values) - serving:
            raise ConfigurationError(f"unknown engine settings {sorted(set(values) - serving)}")
        return cls(**values, models=models)


def _serving_fields() -> list[dataclasses.Field]:
    return [f for f in fields(EngineParams) if f.name != "models"]


def params_from_env(environ: Mapping[str, str]) -> EngineParams:
    """Engine parameters overridden by ``ANIREC_*`` variables (see the module docstring)."""
    known: set[str] = set(OTHER_SETTINGS)
    serving = {}
    for f in _serving_fields():
        name = f"ANIREC_{f.name.upper()}"
        known.add(name)
        if name in environ:
            serving[f.name] = parse_value(environ[name], type(f.default), name)
    models = {}
    for algorithm in registry.ALGORITHMS:
        changes = {}
        for f in fields(algorithm.config):
            name = f"ANIREC_{algorithm.env}_{f.name.upper()}"
            known.add(name)
            if name in environ:
                changes[f.name] = parse_value(environ[name],
                                              field_type(algorithm.config, f.name), name)
        if changes:
            try:
                models[algorithm.name] = replace(algorithm.config(), **changes)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"{algorithm.name} settings: {exc}") from None
    for name in sorted(n for n in environ if n.startswith("ANIREC_") and n not in known):
        # A typo (or a setting renamed since) would otherwise be silently ignored.
        same_field = sorted(k for k in known if k.endswith("_" + name[len("ANIREC_"):]))
        close = same_field[:1] or difflib.get_close_matches(name, sorted(known), n=1)
        _log.warning("%s is not a setting and is ignored%s", name,
                     f" (did you mean {close[0]}?)" if close else "")
    return EngineParams(**serving, models=models)


def params_to_env(params: EngineParams) -> dict[str, str]:
    """The ``ANIREC_*`` variables that make :func:`params_from_env` return ``params``."""
    env = {f"ANIREC_{f.name.upper()}": str(getattr(params, f.name)) for f in _serving_fields()}
    for algorithm in registry.ALGORITHMS:
        config = params.model(algorithm.name)
        for f in fields(config):
            env[f"ANIREC_{algorithm.env}_{f.name.upper()}"] = str(getattr(config, f.name))
    return env


def load_environ() -> Mapping[str, str]:
    """The process environment after ``.env`` (which never overrides what is already set)."""
    from dotenv import load_dotenv

    load_dotenv()
    return os.environ


# --------------------------------------------------------------------------- settings
DEFAULT_DATABASE_PATH = ROOT / "data" / "anime.db"
DEFAULT_CACHE_DIR = ROOT / "data" / "cache"


def default_database_url() -> str:
    """The embedded SQLite file ``data/anime.db`` (absolute, so the cwd does not matter)."""
    return f"sqlite:///{DEFAULT_DATABASE_PATH}"


@dataclass(frozen=True)
class Settings:
    """Everything the engine reads from the environment; build it with :func:`load_settings`.

    ``secret_key`` (admin actions in the dashboard) is never shown by ``repr``,
    and the database URL is shown without its password.
    """

    database_url: str = field(default_factory=default_database_url)
    cache_dir: Path = DEFAULT_CACHE_DIR
    params: EngineParams = field(default_factory=EngineParams)
    secret_key: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (f"Settings(database_url={redact_url(self.database_url)!r}, "
                f"cache_dir={str(self.cache_dir)!r}, params={self.params!r}, "
                f"secret_key={'<set>' if self.secret_key else None})")

    __str__ = __repr__

    @property
    def redacted_database_url(self) -> str:
        return redact_url(self.database_url)

    @property
    def eval_cache_dir(self) -> Path:
        """Where offline evaluation results are cached (beside the model cache)."""
        return self.cache_dir / "eval"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (default: the process environment after ``.env``).

    ``DATABASE_URL`` (default: SQLite at ``data/anime.db``), ``ANIREC_CACHE_DIR``
    (default ``data/cache``; relative paths are taken from the repository root),
    ``ANIREC_*`` for engine parameters and ``SECRET_KEY``. With
    ``environ=None`` a ``.env`` file is read first; real variables win over it.
    """
    if environ is None:
        environ = load_environ()
    url = (environ.get("DATABASE_URL") or "").strip() or default_database_url()
    cache_raw = (environ.get("ANIREC_CACHE_DIR") or "").strip()
    cache_dir = Path(cache_raw) if cache_raw else DEFAULT_CACHE_DIR
    if not cache_dir.is_absolute():
        cache_dir = ROOT / cache_dir
    return Settings(
        database_url=url,
        cache_dir=cache_dir,
        params=params_from_env(environ),
        secret_key=(environ.get("SECRET_KEY") or "").strip() or None,
    )


__all__ = ["EngineParams", "Settings", "load_settings", "params_from_env", "params_to_env",
           "redact_url", "ROOT"]
