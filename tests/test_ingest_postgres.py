"""PostgreSQL bulk ingest: an empty table is loaded with its keys rebuilt, all or nothing."""

import pytest
import sqlalchemy as sa

from conftest import _postgres_schema_url, two_taste_groups, write_csvs
from recommender.data import pg_bulk
from recommender.data.database import create_db_engine, create_tables
from recommender.data.ingest import ingest

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(request):
    engine = create_db_engine(_postgres_schema_url(request))
    create_tables(engine)
    yield engine
    engine.dispose()


def constraints(engine) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        return set(pg_bulk._key_constraints(conn, "ratings"))


def test_loading_an_empty_table_keeps_every_key_and_rejects_a_repeat_later(database, tmp_path):
    before = constraints(database)
    assert {kind for _, kind, _ in before} == {"p", "f"}
    anime, ratings = two_taste_groups()
    report = ingest(database, *write_csvs(tmp_path, anime, ratings))
    assert report.ratings_added == len(ratings)
    assert constraints(database) == before
    first = ratings.iloc[0]
    with pytest.raises(sa.exc.IntegrityError), database.begin() as conn:
        conn.exec_driver_sql("INSERT INTO ratings VALUES (%s, %s, 5)",
                             (int(first.user_id), int(first.anime_id)))
    with pytest.raises(sa.exc.IntegrityError), database.begin() as conn:
        conn.exec_driver_sql("INSERT INTO ratings VALUES (%s, 999999, 5)", (int(first.user_id),))
    with database.connect() as conn:
        got = conn.exec_driver_sql("SELECT user_id, anime_id, rating FROM ratings "
                                   "ORDER BY user_id, anime_id").all()
    assert got == sorted(map(tuple, ratings[["user_id", "anime_id", "rating"]]
                             .astype(int).itertuples(index=False, name=None)))


def test_a_failure_after_the_load_leaves_the_table_empty_with_its_keys(database, tmp_path,
                                                                       monkeypatch):
    before = constraints(database)
    import recommender.data.ingest as module

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(module, "set_meta", boom)  # runs after the keys are rebuilt
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(database, *write_csvs(tmp_path, *two_taste_groups()))
    assert constraints(database) == before
    with database.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ratings").scalar() == 0


def test_a_table_with_rows_is_merged_through_staging_skipping_known_pairs(database, tmp_path):
    anime, ratings = two_taste_groups()
    half = len(ratings) // 2
    ingest(database, *write_csvs(tmp_path, anime, ratings.iloc[:half]))
    more = tmp_path / "more"
    more.mkdir()
    report = ingest(database, *write_csvs(more, anime, ratings))
    assert report.ratings_added == len(ratings) - half
    with database.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ratings").scalar() == len(ratings)


def test_binary_rows_are_the_copy_wire_format():
    import numpy as np

    out = pg_bulk.binary_rows(np.array([1, 70000]), np.array([2, 3]), np.array([-1, 10]))
    assert len(out) == 2 * (2 + 3 * 4 + 4 + 4 + 2)
    assert out[:2] == b"\x00\x03" and out[2:6] == b"\x00\x00\x00\x04"
    assert out[6:10] == (1).to_bytes(4, "big") and out[22:24] == (-1).to_bytes(2, "big",
                                                                               signed=True)
