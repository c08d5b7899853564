"""Ingest the Kaggle CSVs (``anime.csv``, ``rating.csv``, also gzipped) into the database.

One pass over the ratings file, streaming in chunks, then one write:

1. validate every row and write nothing; the first problem raises
   :class:`DataFormatError` naming the file, the 1-based line (the header is
   line 1) and what is wrong. The checked columns are kept (10 bytes a row,
   plus one int64 key per row for the duplicate check: 140 MB for the full
   7.8M-row file);
2. insert them, in ONE transaction, skipping pairs the database already has.

So a bad file leaves the database exactly as it was, and running an ingest
twice adds nothing the second time. Inserts are Core ``insert()`` executemany
(SQLite) or binary ``COPY`` (PostgreSQL, :mod:`recommender.data.pg_bulk`),
never ORM objects.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from tqdm.auto import tqdm

from recommender.data import database as db
from recommender.data import pg_bulk
from recommender.data.catalog import CATALOGUE_COLUMNS, RATING_COLUMNS, clean_anime, read_anime_csv
from recommender.data.checks import (
    MAX_ID,
    first_bad_number,
    first_data_row_too_long,
    open_text,
    reading,
)
from recommender.data.database import (
    Anime,
    Rating,
    User,
    bump_revision,
    count_rows,
    set_meta,
    write_transaction,
)
from recommender.errors import DataFormatError

_log = logging.getLogger(__name__)

CHUNK_ROWS = 250_000
#: Pair keys are user_id * KEY_STRIDE + anime_id: ids are below 2**31 (the columns'
#: limit), so a key is below 2**62 and fits an int64 whatever the ids are.
KEY_STRIDE = 2**31


@dataclass(frozen=True)
class IngestReport:
    """What one ingest added (rows already present are not counted)."""

    anime_added: int
    users_added: int
    ratings_added: int
    ratings_in_file: int
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- ratings
def _rating_chunks(path: Path, chunk_rows: int):
    """Chunks of the ratings file (as pandas types them) and their first line number.

    The header is line 1. Every read and decompression error becomes one
    :class:`DataFormatError` naming the file; a row with more fields than the
    header is an error (pandas would drop the extra field or shift the columns).
    """
    with reading(path):
        with open_text(path) as handle:
            head = handle.read(1 << 16)
        header = next(csv.reader(io.StringIO(head)), [])
        if not header:
            raise DataFormatError(f"{path}: is empty (no header line)")
        missing = [c for c in RATING_COLUMNS if c not in header]
        if missing:
            raise DataFormatError(f"{path}: line 1: missing column(s) {', '.join(missing)} "
                                  f"(expected {', '.join(RATING_COLUMNS)})")
        extra = first_data_row_too_long(head)
        if extra is not None:
            raise DataFormatError(f"{path}: line 2: {extra} fields where the header has "
                                  f"{len(header)}")
    line = 2
    with reading(path), open_text(path) as handle:
        reader = pd.read_csv(handle, chunksize=chunk_rows, skip_blank_lines=False,
                             index_col=False, low_memory=False)
        for chunk in reader:
            yield line, chunk
            line += len(chunk)


def _check_ratings_chunk(path: Path, first_line: int, chunk: pd.DataFrame,
                         known_anime: np.ndarray, app_users: np.ndarray):
    """Typed arrays of one chunk, or DataFormatError for its first bad line."""
    problems: list[tuple[int, str]] = []
    arrays = {}
    for column, (low, high) in (("user_id", (1, MAX_ID)), ("anime_id", (1, MAX_ID)),
                                ("rating", (-1, 10))):
        arrays[column], row, problem = first_bad_number(chunk[column], low, high)
        if row is not None:
            hint = " (-1 = watched, else 1..10)" if column == "rating" else ""
            problems.append((row, f"{column} {problem}{hint}"))
    if problems:
        row, message = min(problems)
        raise DataFormatError(f"{path}: line {first_line + row}: {message}")
    users, anime, rating = arrays["user_id"], arrays["anime_id"], arrays["rating"]

    def first(mask: np.ndarray, message: Callable[[int], str]) -> None:
        if mask.any():
            row = int(np.flatnonzero(mask)[0])
            problems.append((row, message(row)))

    first(rating == 0, lambda r: "rating 0 is outside -1..10 (-1 = watched, else 1..10)")
    pos = np.clip(np.searchsorted(known_anime, anime), 0, max(len(known_anime) - 1, 0))
    unknown = (known_anime[pos] != anime) if len(known_anime) else np.ones(len(anime), bool)
    first(unknown, lambda r: f"anime_id {anime[r]} is not in the anime table")
    if len(app_users):
        first(np.isin(users, app_users),
              lambda r: f"user_id {users[r]} belongs to a user created in the app")
    if problems:
        row, message = min(problems)
        raise DataFormatError(f"{path}: line {first_line + row}: {message}")
    return users, anime, rating.astype(np.int16)


@dataclass(frozen=True, eq=False)
class ValidRatings:
    """The rows of a ratings file that passed every check, in file order."""

    user_id: np.ndarray   # int32
    anime_id: np.ndarray  # int32
    rating: np.ndarray    # int16

    def __len__(self) -> int:
        return len(self.user_id)

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.user_id, self.anime_id, self.rating


def read_valid_ratings(path: str | Path, known_anime: np.ndarray, *,
                       app_users: np.ndarray | None = None, chunk_rows: int = CHUNK_ROWS,
                       progress: bool = False) -> ValidRatings:
    """Check every line of a ratings file without writing; returns its typed columns.

    ``known_anime`` are the anime ids ratings may refer to. Raises
    :class:`DataFormatError` for the first problem: a missing column, a
    non-integer value, a rating outside -1..10, an unknown anime id, or a
    (user, anime) pair listed twice. The columns are kept (10 bytes a row) so
    the insert does not parse the file a second time.
    """
    path = Path(path)
    known_anime = np.unique(np.asarray(known_anime, dtype=np.int64))
    app_users = np.asarray(app_users if app_users is not None else [], dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    with tqdm(desc=f"check {path.name}", unit="rows", disable=not progress,
              unit_scale=True) as bar:
        for first_line, chunk in _rating_chunks(path, chunk_rows):
            users, anime, rating = _check_ratings_chunk(path, first_line, chunk, known_anime,
                                                        app_users)
            # Ids are checked to be below 2**31, so int32 holds them.
            parts.append((users.astype(np.int32), anime.astype(np.int32), rating))
            bar.update(len(chunk))
    if parts:
        valid = ValidRatings(*(np.concatenate(column) for column in zip(*parts)))
    else:
        valid = ValidRatings(np.empty(0, np.int32), np.empty(0, np.int32),
                             np.empty(0, np.int16))
    del parts
    allkeys = valid.user_id.astype(np.int64) * KEY_STRIDE + valid.anime_id
    order = np.argsort(allkeys, kind="stable")
    ordered = allkeys[order]
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    if len(same):
        # The later of each equal pair is the repeat; report the earliest repeat.
        row = int(order[same + 1].min())
        key = int(allkeys[row])
        first_row = int(np.flatnonzero(allkeys[:row] == key)[0])
        raise DataFormatError(
            f"{path}: line {row + 2}: duplicate pair user_id {key // KEY_STRIDE}, anime_id "
            f"{key % KEY_STRIDE} (first on line {first_row + 2})"
        )
    return valid


def validate_ratings(path: str | Path, known_anime: np.ndarray, *,
                     app_users: np.ndarray | None = None, chunk_rows: int = CHUNK_ROWS,
                     progress: bool = False) -> int:
    """Check every line of a ratings file without writing; returns the number of rows.

    See :func:`read_valid_ratings` for the checks.
    """
    return len(read_valid_ratings(path, known_anime, app_users=app_users,
                                  chunk_rows=chunk_rows, progress=progress))


# --------------------------------------------------------------------------- writing
def _insert_anime(conn: sa.Connection, catalogue: pd.DataFrame) -> None:
    records = []
    for row in catalogue[list(CATALOGUE_COLUMNS)].itertuples(index=False):
        record = row._asdict()
        record["episodes"] = None if pd.isna(record["episodes"]) else int(record["episodes"])
        record["rating"] = None if pd.isna(record["rating"]) else float(record["rating"])
        record["anime_id"] = int(record["anime_id"])
        record["members"] = int(record["members"])
        records.append(record)
    if records:
        conn.execute(_insert(conn, Anime), records)


def _insert(conn: sa.Connection, model):
    """``INSERT ... ON CONFLICT DO NOTHING`` for either dialect."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing()


def _insert_users(conn: sa.Connection, user_ids: np.ndarray, now: datetime) -> None:
    records = [{"user_id": int(u), "source": "dataset", "created_at": now}
               for u in np.unique(user_ids)]
    if records:
        conn.execute(_insert(conn, User), records)


def _insert_ratings_sqlite(conn: sa.Connection, valid: ValidRatings, chunk_rows: int,
                           advance: Callable[[int], None], now: datetime) -> None:
    # The compiled Core statement, run as a plain DB-API executemany over tuples:
    # building a dict per row would cost several times the insert itself.
    sql = str(_insert(conn, Rating).compile(dialect=conn.dialect))
    _insert_users(conn, valid.user_id, now)
    for start in range(0, len(valid), chunk_rows):
        part = slice(start, start + chunk_rows)
        users, anime, rating = (column[part] for column in valid.columns())
        conn.exec_driver_sql(sql, list(zip(users.tolist(), anime.tolist(), rating.tolist())))
        advance(len(users))


def _insert_ratings_postgres(conn: sa.Connection, valid: ValidRatings, chunk_rows: int,
                             advance: Callable[[int], None], now: datetime,
                             maybe_empty: bool) -> None:
    # Binary COPY straight into an empty table with its keys rebuilt after, or
    # through a staging table otherwise (see recommender.data.pg_bulk).
    pg_bulk.insert_users(conn, np.unique(valid.user_id), now)
    if maybe_empty and pg_bulk.is_empty_locked(conn, Rating.__tablename__):
        pg_bulk.load_into_empty(conn, Rating.__tablename__, valid.columns(), chunk_rows,
                                advance)
    else:
        pg_bulk.merge_into(conn, Rating.__tablename__, valid.columns(), chunk_rows, advance)


def ingest(engine: sa.Engine, anime: str | Path | pd.DataFrame | None = None,
           ratings: str | Path | None = None, *, chunk_rows: int = CHUNK_ROWS,
           progress: bool = False,
           on_progress: Callable[[float], None] | None = None) -> IngestReport:
    """Add a catalogue and/or a ratings file to the database, all or nothing.

    ``anime`` is a Kaggle ``anime.csv`` path or an already clean catalogue
    frame (``catalog.load_bundled_anime()``); ``ratings`` a ``rating.csv``
    path (``.gz`` works). Both are validated before anything is written, and
    everything is written in one transaction. Rows whose key already exists
    (anime id, user id, (user, anime) pair) are skipped, so a repeat adds
    nothing. ``progress`` shows tqdm bars; ``on_progress(fraction)`` reports
    the insert pass to a caller such as the dashboard.
    """
    started = time.perf_counter()
    catalogue = None
    if isinstance(anime, pd.DataFrame):
        catalogue = clean_anime(anime)
    elif anime is not None:
        catalogue = read_anime_csv(anime)
    before = count_rows(engine)
    with db.guard(engine, "cannot read the catalogue"), engine.connect() as conn:
        known = np.asarray(conn.execute(sa.select(Anime.anime_id)).scalars().all(), np.int64)
        app_users = np.asarray(conn.execute(
            sa.select(User.user_id).where(User.source == "app")).scalars().all(), np.int64)
    if catalogue is not None:
        known = np.union1d(known, catalogue["anime_id"].to_numpy(np.int64))
    n_rows, valid = 0, None
    if ratings is not None:
        ratings = Path(ratings)
        valid = read_valid_ratings(ratings, known, app_users=app_users, chunk_rows=chunk_rows,
                                   progress=progress)
        n_rows = len(valid)
    now = datetime.now(UTC)
    with db.guard(engine, "nothing was ingested"), write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            # One INSERT of the whole file may outlast the usual per-statement limit.
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        if catalogue is not None:
            _insert_anime(conn, catalogue)
        if valid is not None:
            with tqdm(total=n_rows, desc=f"insert {ratings.name}", unit="rows",
                      disable=not progress, unit_scale=True) as bar:

                def advance(rows: int) -> None:
                    bar.update(rows)
                    if on_progress is not None:
                        on_progress(min(1.0, bar.n / max(n_rows, 1)))

                if conn.dialect.name == "postgresql":
                    _insert_ratings_postgres(conn, valid, chunk_rows, advance, now,
                                             maybe_empty=before["ratings"] == 0)
                else:
                    _insert_ratings_sqlite(conn, valid, chunk_rows, advance, now)
        set_meta(conn, "last_ingest", json.dumps({
            "at": now.isoformat(), "anime": None if anime is None else str(
                "<frame>" if isinstance(anime, pd.DataFrame) else anime),
            "ratings": None if ratings is None else str(ratings), "rows": n_rows}))
        bump_revision(conn)
    after = count_rows(engine)
    report = IngestReport(
        anime_added=after["anime"] - before["anime"],
        users_added=after["users"] - before["users"],
        ratings_added=after["ratings"] - before["ratings"],
        ratings_in_file=n_rows,
        seconds=time.perf_counter() - started,
    )
    _log.info("ingest: %s", report)
    return report


def ingest_bundled(engine: sa.Engine, *, progress: bool = False,
                   on_progress: Callable[[float], None] | None = None) -> IngestReport:
    """Ingest the bundled catalogue (with 2020 titles and synopses) and rating subset."""
    from recommender.data.catalog import BUNDLED_RATINGS, load_bundled_anime

    return ingest(engine, load_bundled_anime(), BUNDLED_RATINGS, progress=progress,
                  on_progress=on_progress)
