"""Shared fixtures: a tiny data set with a known answer, and the bundled real data."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender import EngineParams, RecommenderEngine  # noqa: E402
from recommender.data import synthetic  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_configure(config):
    config.addinivalue_line("markers", "realdata: uses the bundled real data set")
    config.addinivalue_line("markers", "postgres: needs the PostgreSQL server")
    config.addinivalue_line("markers", "browser: drives headless Chromium")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def two_taste_groups(n_users_per_group: int = 20, seed: int = 0):
    """Anime 1-10 are sci-fi, 11-20 romance; even users love sci-fi, odd users romance.

    Each user rates 6 random titles of their own taste 9-10 and 2 of the other 2-3,
    so a working recommender keeps each user inside their group.
    """
    return synthetic.two_taste_groups(n_users_per_group, seed=seed)


#: TINY_PARAMS as environment variables, for tests that start a process.
#: The tiny data fit every model, the opt-in ranker included, in about a second; the
#: dashboard fits them before its first page (tests/test_background_fit.py covers the
#: background fit), so a page test sees every algorithm from its first run.
TINY_ENV = {"ANIREC_USER_USER_DIM": "8", "ANIREC_USER_USER_N_NEIGHBOURS": "10",
            "ANIREC_USER_USER_N_CANDIDATES": "40", "ANIREC_USER_USER_EF": "50",
            "ANIREC_USE_RANKER": "1", "ANIREC_BACKGROUND_FIT": "0"}
TINY_PARAMS = EngineParams(use_ranker=True).with_model("user-user", dim=8, n_neighbours=10,
                                                      n_candidates=40, ef=50)


@pytest.fixture(scope="session")
def tiny_frames():
    return two_taste_groups()


@pytest.fixture(scope="session")
def tiny_engine(tiny_frames):
    anime, ratings = tiny_frames
    return RecommenderEngine.from_frames(anime, ratings, TINY_PARAMS)


@pytest.fixture(scope="session")
def bundled_frames():
    from recommender.data.catalog import load_bundled_anime, load_bundled_ratings

    return load_bundled_anime(), load_bundled_ratings()


@pytest.fixture(scope="session")
def bundled_site(tmp_path_factory) -> Path:
    """A database holding the bundled data and a model cache fitted on it, made once.

    A first start on the bundled data fits every model (about two minutes here).
    Page and command-line tests that only need a started dashboard or CLI copy
    these files (:func:`copy_bundled_site`) and start warm on their own copy, so
    what one test saves reaches no other. tests/test_browser.py still makes the
    cold first start on the bundled data (the background fit included), and
    tests/test_background_fit.py covers the background fit itself.
    """
    from recommender.config import Settings

    root = tmp_path_factory.mktemp("bundled-site")
    settings = Settings(database_url=f"sqlite:///{root / 'anime.db'}", cache_dir=root / "cache")
    engine = RecommenderEngine.from_settings(settings)
    assert engine.build_info["index"] == "built"
    return root


def copy_bundled_site(site: Path, directory: Path) -> dict[str, str]:
    """Copy :func:`bundled_site` into ``directory``; returns its DATABASE_URL and cache."""
    import shutil

    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(site / "anime.db", directory / "anime.db")
    shutil.copytree(site / "cache", directory / "cache")
    return {"DATABASE_URL": f"sqlite:///{directory / 'anime.db'}",
            "ANIREC_CACHE_DIR": str(directory / "cache")}


@pytest.fixture(scope="session")
def bundled_engine(bundled_site, tmp_path_factory):
    """The engine on the bundled data with the default parameters, started warm.

    On its own copy of :func:`bundled_site`, so nothing it might save reaches it.
    """
    from recommender.config import Settings

    env = copy_bundled_site(bundled_site, tmp_path_factory.mktemp("bundled-engine"))
    return RecommenderEngine.from_settings(Settings(database_url=env["DATABASE_URL"],
                                                    cache_dir=Path(env["ANIREC_CACHE_DIR"])))


# --------------------------------------------------------------------------- databases
# Every data-layer test runs on SQLite (a temp file) and on PostgreSQL (a throwaway
# schema in the `test` database). Under CI=true a missing server fails the test.
POSTGRES_URL = os.environ.get("ANIREC_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_schema_url(request):
    import uuid

    import sqlalchemy as sa

    schema = f"anirec_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(POSTGRES_URL)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        message = f"PostgreSQL at {POSTGRES_URL} is not usable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)

    def drop():
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()

    request.addfinalizer(drop)
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A URL of an empty database: SQLite in a temp file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return _postgres_schema_url(request)


def write_csvs(directory: Path, anime: pd.DataFrame, ratings: pd.DataFrame):
    """The frames as Kaggle-format CSV files; returns (anime_path, ratings_path)."""
    anime_path, ratings_path = directory / "anime.csv", directory / "rating.csv"
    anime.to_csv(anime_path, index=False)
    ratings.to_csv(ratings_path, index=False)
    return anime_path, ratings_path


def fill_tiny_database(url: str, directory: Path) -> None:
    """Create the tables at ``url`` and ingest two_taste_groups through CSVs in ``directory``."""
    from recommender.data.database import create_db_engine, create_tables
    from recommender.data.ingest import ingest

    database = create_db_engine(url)
    create_tables(database)
    ingest(database, *write_csvs(directory, *two_taste_groups()))
    database.dispose()


@pytest.fixture
def tiny_settings(db_url, tmp_path):
    """Settings over a database holding two_taste_groups, with a temp cache dir."""
    from recommender.config import Settings

    fill_tiny_database(db_url, tmp_path)
    return Settings(database_url=db_url, cache_dir=tmp_path / "cache", params=TINY_PARAMS)


@contextmanager
def environment(values: dict[str, str]):
    """``values`` set in ``os.environ`` for the block, then the old values back.

    For module-scoped fixtures, which cannot take the function-scoped ``monkeypatch``.
    """
    with pytest.MonkeyPatch.context() as patch:
        for key, value in values.items():
            patch.setenv(key, value)
        yield
