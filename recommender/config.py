"""Settings, read once from the environment (and ``.env``), and engine parameters."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from recommender.errors import ConfigurationError


@dataclass(frozen=True)
class EngineParams:
    """Hyper-parameters of the engine's algorithms; part of every cache key.

    The defaults are the settings chosen on the validation split (see README,
    "Evaluation"; ``scripts/tune.py`` reproduces the search).
    """

    # user-user CF
    n_neighbors: int = 200
    dim: int = 32
    n_candidates: int = 400
    hnsw_m: int = 16
    hnsw_ef_construction: int = 100
    hnsw_ef: int = 300
    like_threshold: float = 8.0
    watched_weight: float = 0.5
    damping: float = 5.0
    # speed of the user-user build (see README "Performance")
    svd_n_iter: int = 2
    index_threads: int = 2
    posting_budget: int = 200_000
    centre_ratings: bool = False
    disliked_weight: float = 0.5
    similarity_power: float = 1.0
    # content
    use_synopsis: bool = True
    use_type: bool = True
    synopsis_weight: float = 1.0
    type_weight: float = 0.2
    # -- learned models ("mf", "ease" and their "blend"; see recommender/mf.py, ease.py)
    use_models: bool = True           # False: skip fitting them (faster start, fewer algorithms)
    mf_factors: int = 128
    mf_regularization: float = 50.0
    mf_alpha: float = 5.0             # confidence = 1 + alpha * (rating / 10)
    mf_iterations: int = 15
    mf_watched_value: float = 0.5     # preference of a -1 ("watched, not rated")
    mf_bm25: bool = False
    mf_dislike_below: float = 7.0     # ratings below this are dislikes (0: none)
    ease_lambda: float = 100.0
    ease_min_support: int = 5         # anime with fewer watchers are left out of EASE
    ease_weighting: str = "rating"    # "binary" or "rating"
    ease_dislike_below: float = 5.0   # ratings below this are negative inputs (0: none)
    blend_weights: str = "ease:1.0,content:0.05"  # "name:weight,...", chosen on validation
    # -- end of learned models
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


# --------------------------------------------------------------------------- settings
#: The repository root: relative paths in settings are taken from here, not the cwd.
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_PATH = ROOT / "data" / "anime.db"
DEFAULT_CACHE_DIR = ROOT / "data" / "cache"


def default_database_url() -> str:
    """The embedded SQLite file ``data/anime.db`` (absolute, so the cwd does not matter)."""
    return f"sqlite:///{DEFAULT_DATABASE_PATH}"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``; safe to print or log."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparsable: hide whatever sits between "user:" and "@"
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


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


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (default: the process environment after ``.env``).

    ``DATABASE_URL`` (default: SQLite at ``data/anime.db``), ``ANIREC_CACHE_DIR``
    (default ``data/cache``; relative paths are taken from the repository root),
    ``ANIREC_<FIELD>`` for engine parameters and ``SECRET_KEY``. With
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
        secret_key=(environ.get("SECRET_KEY") or None),
    )
