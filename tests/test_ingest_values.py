"""Ingest stores exactly what the file says or nothing: no wrapped numbers, no silently
dropped fields, no false duplicates, no foreign errors for files that are not what their
name says. Every case runs on SQLite and PostgreSQL, which must accept the same files."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile

import pytest

from recommender.data.database import create_db_engine, create_tables
from recommender.data.ingest import ingest
from recommender.errors import DataFormatError
from test_ingest import snapshot

ANIME_HEAD = "anime_id,name,genre,type,episodes,rating,members\n"
GOOD_ANIME = ANIME_HEAD + "1,One,Action,TV,12,8.1,100\n2,Two,Drama,Movie,1,7.0,50\n"
RATINGS_HEAD = "user_id,anime_id,rating\n"
BIG = 2**64 - 1

#: (file name, content, line, words the message must contain). Every one is refused.
BAD_RATINGS = [
    ("r.csv", RATINGS_HEAD + f"1,1,{BIG}\n", 2, f"rating {BIG}"),
    ("r.csv", RATINGS_HEAD + f"{BIG},1,5\n", 2, f"user_id {BIG}"),
    ("r.csv", RATINGS_HEAD + f"1,{2**63}\n,5\n", 2, "anime_id"),
    ("r.csv", RATINGS_HEAD + "1,1,5\n" + f"{2**31},1,5\n", 3, f"user_id {2**31}"),
    ("r.csv", RATINGS_HEAD + "1,1,5\n2,2,-2\n", 3, "rating -2"),
    ("r.csv", RATINGS_HEAD + "1,1,0\n", 2, "rating 0"),
    ("r.csv", RATINGS_HEAD + "1,1,7.5\n", 2, "7.5"),
    ("r.csv", RATINGS_HEAD + "1,1,1e400\n", 2, "rating"),
    ("r.csv", RATINGS_HEAD + "1,1,NaN\n", 2, "rating"),
    ("r.csv", RATINGS_HEAD + "1,1,True\n", 2, "rating"),
    ("r.csv", RATINGS_HEAD + "1,1,5,9\n", 2, "fields"),
    ("r.csv", RATINGS_HEAD + "1,1,5\n1,2,5,9\n", 3, "fields"),
    ("r.csv", RATINGS_HEAD + "1,1,5\n1,1,6\n", 3, "duplicate pair"),
    ("r.csv", RATINGS_HEAD + "1,3,5\n", 2, "not in the anime table"),
    ("r.csv", RATINGS_HEAD + "1,1,\n", 2, "rating is missing"),
    ("r.csv", "user_id,rating\n1,5\n", 1, "missing column"),
    ("r.csv", "", None, "empty"),
    ("r.csv", RATINGS_HEAD + '"1\n2",1,5\n', 2, "user_id"),
    ("r.csv.gz", gzip.compress((RATINGS_HEAD + "1,1,5\n" * 50).encode())[:30], None,
     "truncated"),
    ("r.csv.gz", b"not gzip at all", None, "gzip"),
    ("r.csv.zip", b"PK\x03\x04 garbage", None, "zip"),
    ("r.csv.zip", b"garbage", None, "zip"),
    ("r.csv.xz", b"garbage", None, "xz"),
    ("r.csv.xz", lzma.compress((RATINGS_HEAD + "1,1,5\n").encode())[:20], None, "r.csv.xz"),
    ("r.csv.bz2", b"garbage", None, "r.csv.bz2"),
    ("r.csv.zst", b"\x28\xb5\x2f\xfd garbage", None, "not supported"),
    ("r.csv.tar", b"garbage", None, "not supported"),
    ("r.csv", b"user_id,anime_id,rating\n1,1,\xff\xfe\n", None, "UTF-8"),
    ("r.csv", b"\x00\x01\x02\x03", None, "r.csv"),
]

BAD_ANIME = [
    ("a.csv", ANIME_HEAD + f"1,One,Action,TV,12,8.1,{BIG}\n", 2, "members"),
    ("a.csv", ANIME_HEAD + "1,One,Action,TV,12,8.1,1e30\n", 2, "members"),
    ("a.csv", ANIME_HEAD + "1,One,Action,TV,12,8.1,-5\n", 2, "members"),
    ("a.csv", ANIME_HEAD + "1,One,Action,TV,12,8.1,lots\n", 2, "members"),
    ("a.csv", ANIME_HEAD + f"{2**31},Big,,TV,1,7,1\n", 2, "anime_id"),
    ("a.csv", ANIME_HEAD + "0,Zero,,TV,1,7,1\n", 2, "anime_id"),
    ("a.csv", ANIME_HEAD + f"1,One,Action,TV,{2**40},8.1,100\n", 2, "episodes"),
    ("a.csv", ANIME_HEAD + "1,One,Action,TV,1.5,8.1,100\n", 2, "episodes"),
    ("a.csv", ANIME_HEAD + "1,One,Action,TV,12,11.5,100\n", 2, "rating"),
    ("a.csv", ANIME_HEAD + "1,One,Action," + "T" * 33 + ",12,8,1\n", 2, "type is longer"),
    ("a.csv", ANIME_HEAD + "1,Nul\x00Name,Action,TV,12,8,1\n", 2, "NUL"),
    ("a.csv", ANIME_HEAD + "1,One,Action,TV,12,8,1,extra\n", 2, "fields"),
    ("a.csv", ANIME_HEAD + "1,One,A,TV,1,8,1\n2,Two,A,TV,1,8,1,extra\n", 3, "fields"),
    # A quoted name spanning three lines: the bad row after it is on line 5, not line 3.
    ("a.csv", ANIME_HEAD + '1,"Long\nname\nhere",A,TV,1,8,1\nx,Two,A,TV,1,8,1\n', 5,
     "anime_id 'x'"),
    ("a.csv", ANIME_HEAD + '1,"Long\nname",A,TV,1,8,1\n1,Again,A,TV,1,8,1\n', 4,
     "appears more than once"),
    ("a.csv.gz", b"\x1f\x8b\x08\x00 broken", None, "a.csv.gz"),
    ("a.csv.zip", b"PK garbage", None, "zip"),
]


def _content(raw) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode()


@pytest.fixture
def database(db_url, tmp_path):
    engine = create_db_engine(db_url)
    create_tables(engine)
    path = tmp_path / "anime.csv"
    path.write_text(GOOD_ANIME)
    ingest(engine, path, None)
    yield engine
    engine.dispose()


def _refused(database, path, anime, ratings, line, words) -> None:
    """Ingest of ``anime``/``ratings`` fails in one line naming ``path``; no row changes."""
    before = snapshot(database)
    with pytest.raises(DataFormatError) as err:
        ingest(database, anime, ratings)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert words in message, message
    if line is not None:
        assert f": line {line}:" in message, message
    assert snapshot(database) == before


@pytest.mark.parametrize("name, content, line, words", BAD_RATINGS)
def test_a_bad_ratings_file_is_one_line_naming_the_file_and_changes_nothing(
        database, tmp_path, name, content, line, words):
    path = tmp_path / name
    path.write_bytes(_content(content))
    _refused(database, path, None, path, line, words)


@pytest.mark.parametrize("name, content, line, words", BAD_ANIME)
def test_a_bad_anime_file_is_one_line_naming_the_file_and_changes_nothing(
        database, tmp_path, name, content, line, words):
    path = tmp_path / name
    path.write_bytes(_content(content))
    _refused(database, path, path, None, line, words)


def _compressed(kind: str, text: str) -> bytes:
    data = text.encode()
    if kind == "gz":
        return gzip.compress(data)
    if kind == "bz2":
        return bz2.compress(data)
    if kind == "xz":
        return lzma.compress(data)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("rating.csv", data)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zip"])
def test_large_ids_and_every_compression_are_stored_exactly(database, tmp_path, kind):
    # Anime ids far above 2**21 and user ids near the column limit: no false duplicate,
    # and what is read back is what the file said.
    anime = tmp_path / "big.csv"
    anime.write_text(ANIME_HEAD + f"{2**21},A,,TV,1,7,1\n{2**21 * 3},B,,TV,1,7,1\n"
                     f"{2**31 - 1},C,,TV,1,7,1\n")
    ingest(database, anime, None)
    rows = [(7, 2**21, 10), (7, 2**21 * 3, 9), (7, 2**31 - 1, -1), (2**31 - 1, 2**21, 1)]
    path = tmp_path / f"r.csv.{kind}"
    path.write_bytes(_compressed(kind, RATINGS_HEAD + "".join(f"{u},{a},{r}\n"
                                                              for u, a, r in rows)))
    report = ingest(database, None, path)
    assert report.ratings_added == len(rows)
    with database.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT user_id, anime_id, rating FROM ratings ORDER BY user_id, anime_id").all()
    assert sorted(map(tuple, stored)) == sorted(rows)


def test_a_tar_or_an_archive_of_many_files_is_refused_plainly(database, tmp_path):
    path = tmp_path / "two.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", RATINGS_HEAD)
        archive.writestr("b.csv", RATINGS_HEAD)
    with pytest.raises(DataFormatError, match="exactly one file"):
        ingest(database, None, path)
    tar = tmp_path / "r.tar"
    with tarfile.open(tar, "w") as handle:
        info = tarfile.TarInfo("r.csv")
        handle.addfile(info, io.BytesIO(b""))
    with pytest.raises(DataFormatError, match="not supported"):
        ingest(database, None, tar)
