"""Settings, read once from the environment (and ``.env``), and engine parameters."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from .errors import ConfigurationError


@dataclass(frozen=True)
class EngineParams:
    """Hyper-parameters of the engine's algorithms; part of every cache key.

    The defaults are the settings chosen on the validation split (see README,
    "Evaluation"; ``scripts/tune.py`` reproduces the search).
    """

    # user-user CF
    n_neighbors: int = 200
    dim: int = 256
    n_candidates: int = 300
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef: int = 300
    like_threshold: float = 8.0
    watched_weight: float = 0.5
    damping: float = 5.0
    centre_ratings: bool = False
    disliked_weight: float = 0.5
    similarity_power: float = 1.0
    # content
    use_synopsis: bool = True
    use_type: bool = True
    synopsis_weight: float = 1.0
    type_weight: float = 0.2
    # serving
    hybrid_weight: float = 0.7
    include_adult: bool = False
    random_state: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _convert(raw: str, kind: type, name: str):
    try:
        if kind is bool:
            value = raw.strip().lower()
            if value in {"1", "true", "yes", "on"}:
                return True
            if value in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a valid {kind.__name__}") from None


def params_from_env(environ: Mapping[str, str]) -> EngineParams:
    """Engine parameters overridden by ``ANIREC_<FIELD>`` variables (e.g. ``ANIREC_DIM``)."""
    values = {}
    for f in fields(EngineParams):
        name = f"ANIREC_{f.name.upper()}"
        if name in environ:
            kind = type(getattr(EngineParams(), f.name))
            values[f.name] = _convert(environ[name], kind, name)
    return EngineParams(**values)


def load_environ() -> Mapping[str, str]:
    """The process environment after ``.env`` (which never overrides what is already set)."""
    from dotenv import load_dotenv

    load_dotenv()
    return os.environ
