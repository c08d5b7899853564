"""Ingest: idempotent, all or nothing, and errors that name the file, line and problem."""

import gzip
import hashlib

import pytest
import sqlalchemy as sa

from conftest import two_taste_groups, write_csvs
from recommender.data.database import count_rows, create_db_engine, create_tables
from recommender.data.ingest import ingest
from recommender.errors import DataFormatError


def snapshot(database) -> dict:
    """Row counts and a sha256 of every row of every table, in key order."""
    out = {}
    with database.connect() as conn:
        for table, key in (("anime", "anime_id"), ("users", "user_id"),
                           ("ratings", "user_id, anime_id"), ("meta", "key")):
            rows = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {key}").all()
            digest = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
            out[table] = (len(rows), digest)
    return out


@pytest.fixture
def loaded(db_url, tmp_path):
    """A database holding two_taste_groups, and the CSV paths it came from."""
    anime, ratings = two_taste_groups()
    paths = write_csvs(tmp_path, anime, ratings)
    database = create_db_engine(db_url)
    create_tables(database)
    report = ingest(database, *paths)
    assert (report.anime_added, report.ratings_added) == (20, len(ratings))
    yield database, paths, ratings
    database.dispose()


def test_ingest_twice_adds_nothing_and_gz_works(loaded, tmp_path):
    database, (anime_path, ratings_path), ratings = loaded
    before = count_rows(database)
    assert before == {"anime": 20, "users": 40, "ratings": len(ratings)}
    again = ingest(database, anime_path, ratings_path)
    assert (again.anime_added, again.users_added, again.ratings_added) == (0, 0, 0)
    gz = tmp_path / "rating.csv.gz"
    gz.write_bytes(gzip.compress(ratings_path.read_bytes()))
    assert ingest(database, None, gz).ratings_added == 0
    # New rows alongside old ones: only the new pair is added.
    extra = tmp_path / "more.csv.gz"
    with gzip.open(extra, "wt") as handle:
        handle.write("user_id,anime_id,rating\n1,1,7\n500,3,-1\n")
    pair_exists = int((ratings["user_id"].eq(1) & ratings["anime_id"].eq(1)).any())
    report = ingest(database, None, extra, chunk_rows=1)
    assert report.ratings_added == 2 - pair_exists and report.users_added == 1
    assert count_rows(database)["ratings"] == len(ratings) + 2 - pair_exists


HEADER = "user_id,anime_id,rating\n"
BAD_RATINGS = [
    ("user_id,anime_id\n1,2\n", 1, "missing column(s) rating"),
    (HEADER + "1,2,8\nx,3,9\n", 3, "user_id 'x' is not an integer"),
    (HEADER + "1,2,8\n1,3.5,9\n", 3, "anime_id '3.5' is not an integer"),
    (HEADER + "1,2,8\n1,3,\n", 3, "rating is missing"),
    (HEADER + "1,2,8\n1,3,11\n", 3, "rating 11 is outside -1..10"),
    (HEADER + "1,2,8\n1,3,0\n", 3, "rating 0 is outside -1..10"),
    (HEADER + "1,2,-2\n", 2, "rating -2 is outside -1..10"),
    (HEADER + "1,2,8\n1,3,9\n1,2,7\n", 4, "duplicate pair user_id 1, anime_id 2 (first on line 2)"),
    (HEADER + "1,2,8\n1,999,9\n", 3, "anime_id 999 is not in the anime table"),
    (HEADER + "0,2,8\n", 2, "user_id 0 is outside"),
]


@pytest.mark.parametrize("content, line, problem", BAD_RATINGS)
def test_a_bad_ratings_file_changes_nothing(loaded, tmp_path, content, line, problem):
    database, _, _ = loaded
    before = snapshot(database)
    # Valid rows come first, and chunks of 1 row make sure nothing is written early.
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(DataFormatError) as err:
        ingest(database, None, bad, chunk_rows=1)
    message = str(err.value)
    assert message.startswith(str(bad)) and problem in message
    if line is not None:
        assert f"line {line}:" in message
    assert snapshot(database) == before


def test_a_bad_anime_file_changes_nothing(loaded, tmp_path):
    database, _, _ = loaded
    before = snapshot(database)
    for content, line, problem in [
        ("id,name\n1,A\n", 1, "missing column(s) anime_id"),
        ("anime_id,name\n100,A\nabc,B\n", 3, "anime_id 'abc' is not an integer"),
        ("anime_id,name\n100,A\n100,B\n", 3, "anime_id 100 appears more than once"),
    ]:
        bad = tmp_path / "anime_bad.csv"
        bad.write_text(content)
        with pytest.raises(DataFormatError) as err:
            ingest(database, bad, None)
        assert f"anime_bad.csv: line {line}: {problem}" in str(err.value)
        assert snapshot(database) == before


def test_a_good_anime_file_with_a_bad_ratings_file_writes_neither(loaded, tmp_path):
    database, _, _ = loaded
    before = snapshot(database)
    anime = tmp_path / "new_anime.csv"
    anime.write_text("anime_id,name,genre,type,episodes,rating,members\n"
                     "500,New Show,Comedy,TV,Unknown,7.1,10\n")
    ratings = tmp_path / "new_ratings.csv"
    ratings.write_text(HEADER + "7,500,9\n7,501,9\n")
    with pytest.raises(DataFormatError, match="line 3: anime_id 501 is not in the anime table"):
        ingest(database, anime, ratings)
    assert snapshot(database) == before
    # The rating may refer to anime in the same command's catalogue file.
    ratings.write_text(HEADER + "7,500,9\n")
    report = ingest(database, anime, ratings)
    assert (report.anime_added, report.ratings_added) == (1, 1)


def test_a_failure_while_writing_rolls_everything_back(loaded, tmp_path, monkeypatch):
    database, _, _ = loaded
    before = snapshot(database)
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "900,1,9\n901,2,8\n")
    import recommender.data.ingest as module

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(module, "set_meta", boom)  # runs after the rows are inserted
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(database, None, good)
    assert snapshot(database) == before
    with database.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users WHERE user_id >= 900")
                            ).scalar() == 0
