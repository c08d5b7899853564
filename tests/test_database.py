"""Settings, the checked database engine, and the typed loaders, on SQLite and PostgreSQL."""

import numpy as np
import pytest

from conftest import two_taste_groups, write_csvs
from recommender.config import ROOT, Settings, load_settings, redact_url
from recommender.data.database import (
    count_rows,
    create_db_engine,
    create_tables,
    load_anime,
    load_ratings,
    load_users,
)
from recommender.data.ingest import ingest
from recommender.errors import ConfigurationError, DatabaseError


def test_default_settings_use_sqlite_under_data():
    settings = load_settings({})
    assert settings.database_url == f"sqlite:///{ROOT / 'data' / 'anime.db'}"
    assert settings.cache_dir == ROOT / "data" / "cache"
    assert settings.secret_key is None


def test_settings_read_params_and_hide_secrets():
    settings = load_settings({
        "DATABASE_URL": "postgresql+psycopg://me:hunter2@db:5432/anime",
        "SECRET_KEY": "top-secret", "ANIREC_USER_USER_DIM": "24", "ANIREC_CACHE_DIR": "tmp/cache",
        "ANIREC_HYBRID_WEIGHT": "0.25", "ANIREC_EASE_WEIGHTING": "binary",
    })
    assert settings.params.model("user-user").dim == 24
    assert settings.params.hybrid_weight == 0.25
    assert settings.params.model("ease").weighting == "binary"
    assert settings.cache_dir == ROOT / "tmp" / "cache"
    shown = repr(settings) + str(settings)
    assert "hunter2" not in shown and "top-secret" not in shown
    assert "me:***@db" in shown
    with pytest.raises(ConfigurationError, match="ANIREC_USER_USER_DIM"):
        load_settings({"ANIREC_USER_USER_DIM": "many"})


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://u:pw@host/db", "mysql://u:pw@localhost/x", "weird://u:pw@@h",
])
def test_redact_url_never_shows_the_password(url):
    assert "pw" not in redact_url(url).replace("***", "")


@pytest.mark.parametrize("url, problem", [
    ("::not a url::", "not a valid database URL"),
    ("nosuchdialect://u:pw-123@localhost/x", "no driver"),
    ("postgresql+nosuchdriver://u:pw-123@localhost/x", "no driver"),
    ("postgresql+psycopg://u:pw-123@127.0.0.1:1/x", "cannot connect"),
])
def test_bad_urls_raise_one_clear_database_error(url, problem):
    with pytest.raises(DatabaseError) as err:
        create_db_engine(url)
    message = str(err.value)
    assert message.startswith("DATABASE_URL") and problem in message
    assert "pw-123" not in message and "\n" not in message


def test_tables_and_typed_loaders(db_url, tmp_path):
    anime, ratings = two_taste_groups()
    anime.loc[3, "episodes"] = None
    database = create_db_engine(db_url)
    create_tables(database)
    create_tables(database)  # creating twice is harmless
    assert count_rows(database) == {"anime": 0, "users": 0, "ratings": 0}
    ingest(database, *write_csvs(tmp_path, anime, ratings))

    loaded = load_anime(database)
    assert list(loaded["anime_id"]) == list(range(1, 21))
    assert str(loaded["episodes"].dtype) == "Int64" and loaded["episodes"].isna().sum() == 1
    assert loaded["english_name"].eq("").all() and loaded["members"].dtype == np.int64

    got = load_ratings(database).sort_values(["user_id", "anime_id"]).reset_index(drop=True)
    want = ratings.sort_values(["user_id", "anime_id"]).reset_index(drop=True)
    assert got.dtypes.to_dict() == {"user_id": np.int64, "anime_id": np.int64,
                                    "rating": np.int8}
    assert (got.to_numpy() == want.to_numpy()).all()
    after = load_ratings(database, min_user_id=38)
    assert set(after["user_id"]) == {39, 40}

    users = load_users(database)
    assert list(users["user_id"]) == sorted(ratings["user_id"].unique())
    assert set(users["source"]) == {"dataset"}
    database.dispose()


def test_settings_dataclass_is_frozen():
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.database_url = "sqlite://"  # type: ignore[misc]
