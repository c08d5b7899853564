"""The database: SQLAlchemy 2.0 models, a checked engine, and loaders returning typed frames.

Any SQLAlchemy URL works; the default is an embedded SQLite file and PostgreSQL
(``postgresql+psycopg://...``) is tested as well. Loaders read in chunks through
the DB-API cursor straight into numpy arrays: no ORM object is built per row, so
7.8M ratings load in seconds.
"""

from __future__ import annotations

import functools
import itertools
import logging
import sqlite3
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from recommender.core.redact import redact_text, redact_url
from recommender.data.catalog import CATALOGUE_COLUMNS
from recommender.errors import DatabaseError

_log = logging.getLogger(__name__)

#: Rows per ``fetchmany`` in the loaders.
FETCH_ROWS = 200_000
#: Users created in the app get ids from here up, so they never collide with the
#: Kaggle data set's ids (at most 73,516), even if more of it is ingested later.
APP_USER_ID_START = 1_000_000
#: Where a user came from: the ingested data set, or created in the app.
USER_SOURCES = ("dataset", "app")
#: Key of the PostgreSQL advisory lock that serialises user-id allocation.
USER_ID_LOCK = 0x616E6972  # "anir"


class Base(DeclarativeBase):
    pass


class Anime(Base):
    """One catalogue entry (Kaggle 2016 columns plus 2020 titles and synopsis)."""

    __tablename__ = "anime"
    anime_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(sa.Text)
    genre: Mapped[str] = mapped_column(sa.Text, default="")
    type: Mapped[str] = mapped_column(sa.String(32), default="")
    episodes: Mapped[int | None] = mapped_column(sa.Integer)
    rating: Mapped[float | None] = mapped_column(sa.Float)  # community average, not a user's
    members: Mapped[int] = mapped_column(sa.Integer, default=0)
    english_name: Mapped[str] = mapped_column(sa.Text, default="")
    japanese_name: Mapped[str] = mapped_column(sa.Text, default="")
    synopsis: Mapped[str] = mapped_column(sa.Text, default="")


class User(Base):
    """A user: from the ingested data set (``"dataset"``) or created in the app (``"app"``)."""

    __tablename__ = "users"
    user_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(sa.String(16), default="dataset")
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=lambda: datetime.now(UTC)
    )


class Rating(Base):
    """One user's rating of one anime: -1 (watched, not rated) or 1..10; one per pair."""

    __tablename__ = "ratings"
    # The composite primary key is the (user_id, anime_id) uniqueness rule.
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    anime_id: Mapped[int] = mapped_column(sa.ForeignKey("anime.anime_id"), primary_key=True)
    rating: Mapped[int] = mapped_column(sa.SmallInteger)

    # No secondary index on anime_id: nothing queries by anime, and on SQLite it
    # more than doubles ingest time. WITHOUT ROWID keeps one B-tree, keyed by the pair.
    __table_args__ = (
        sa.CheckConstraint("rating = -1 OR (rating BETWEEN 1 AND 10)", name="rating_range"),
        {"sqlite_with_rowid": False},
    )


class Meta(Base):
    """Small key/value state, e.g. when the data set was ingested."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


# --------------------------------------------------------------------------- errors
def _driver_errors() -> tuple[type[BaseException], ...]:
    """Every exception a database call can raise that is not the package's own.

    SQLAlchemy wraps what goes through it, but the raw DB-API cursor path (the
    fast loaders), pandas' ``read_sql`` and a failing COMMIT on a dead
    connection raise the driver's or pandas' own errors.
    """
    errors: list[type[BaseException]] = [sa.exc.SQLAlchemyError, sqlite3.Error,
                                         pd.errors.DatabaseError]
    try:
        import psycopg

        errors.append(psycopg.Error)
    except ImportError:  # only SQLite is used then
        pass
    return tuple(errors)


#: Catch these around anything that touches the database (see :func:`guard`).
DRIVER_ERRORS = _driver_errors()


def _fail(url: str, problem: str) -> DatabaseError:
    return DatabaseError(f"DATABASE_URL={redact_url(url)}: {problem}")


def database_error(url: str, action: str, exc: BaseException) -> DatabaseError:
    """A one-line :class:`DatabaseError` for ``exc`` raised while doing ``action``.

    The message names ``DATABASE_URL`` (secrets hidden) and the driver's first line,
    itself redacted by structure (see ``recommender.core.redact``).
    """
    return _fail(url, f"{action}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return redact_text(text[0] if text else exc.__class__.__name__)


def url_of(target: sa.Engine | sa.Connection) -> str:
    """The URL of an engine or connection, password included (only ever shown redacted)."""
    engine = target if isinstance(target, sa.Engine) else target.engine
    return engine.url.render_as_string(hide_password=False)


@contextmanager
def guard(target: sa.Engine | sa.Connection | str, action: str):
    """Turn any driver, SQLAlchemy or pandas database error in the block into one line.

    The :class:`DatabaseError` names ``DATABASE_URL`` and ``action``; the package's
    own errors pass through unchanged.
    """
    try:
        yield
    except DRIVER_ERRORS as exc:
        url = target if isinstance(target, str) else url_of(target)
        raise database_error(url, action, exc) from None


def guarded(action: str):
    """Decorator: run the function under :func:`guard` of its first argument."""

    def wrap(func):
        @functools.wraps(func)
        def inner(target, *args, **kwargs):
            with guard(target, action):
                return func(target, *args, **kwargs)

        return inner

    return wrap


# --------------------------------------------------------------------------- engine
#: Seconds a PostgreSQL connection attempt may take: a server that accepts the
#: connection and never answers becomes an error instead of a hang.
CONNECT_TIMEOUT_SECONDS = 5
#: Milliseconds any one PostgreSQL statement may run. Ingest, whose one INSERT is
#: bounded by the file, lifts it inside its own transaction.
STATEMENT_TIMEOUT_MS = 120_000


def _postgres_connect_args(parsed) -> dict:
    options = parsed.query.get("options", "")
    if isinstance(options, tuple):  # given twice in the URL
        options = " ".join(options)
    return {"connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": f"{options} -c statement_timeout={STATEMENT_TIMEOUT_MS}".strip()}


def _sqlite_pragmas(engine: sa.Engine) -> None:
    """Foreign keys on, WAL for readers beside a writer, and explicit BEGINs.

    pysqlite starts transactions lazily, which would let two writers both read
    ``max(user_id)`` before either writes; taking control of BEGIN allows
    ``BEGIN IMMEDIATE`` for connections that will write (execution option
    ``sqlite_immediate``), the recipe from SQLAlchemy's SQLite dialect notes.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_db_engine(url: str, *, check: bool = True) -> sa.Engine:
    """A SQLAlchemy engine for ``url`` (``pool_pre_ping=True``), checked by connecting once.

    A malformed URL, a missing driver or an unreachable server raises
    :class:`DatabaseError` naming ``DATABASE_URL`` (password hidden).
    """
    if not isinstance(url, str) or not url.strip():
        raise DatabaseError("DATABASE_URL is empty; unset it for the default SQLite file")
    try:
        parsed = make_url(url)
    except Exception:
        # Not echoed: a URL that does not parse cannot be shown part by part.
        raise DatabaseError("DATABASE_URL is not a valid database URL (e.g. "
                            "sqlite:///path/anime.db or postgresql+psycopg://user@host:5432/db)"
                            ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _fail(url, f"cannot create the directory of the SQLite file: {exc}") from None
    connect_args = (_postgres_connect_args(parsed)
                    if parsed.get_backend_name() == "postgresql" else {})
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (sa.exc.NoSuchModuleError, ImportError, ModuleNotFoundError) as exc:
        raise _fail(url, f"no driver for this database ({_first_line(exc)}); install it "
                         "or fix the URL's scheme") from None
    except (sa.exc.ArgumentError, TypeError, ValueError) as exc:
        raise _fail(url, f"invalid URL ({_first_line(exc)})") from None
    if engine.dialect.name == "sqlite":
        _sqlite_pragmas(engine)
    if check:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
                if engine.dialect.name == "sqlite":
                    # Reads the schema: a file that is not a database fails here, at start.
                    conn.exec_driver_sql("PRAGMA schema_version")
        except DRIVER_ERRORS as exc:
            engine.dispose()
            raise _fail(url, f"cannot connect: {_first_line(exc)}") from None
    return engine


def create_tables(engine: sa.Engine) -> None:
    """Create any missing tables (existing ones are left as they are)."""
    with guard(engine, "cannot create tables"):
        Base.metadata.create_all(engine)


def write_transaction(engine: sa.Engine):
    """``engine.begin()`` that takes SQLite's write lock at BEGIN (a no-op elsewhere)."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_immediate=True).begin()
    return engine.begin()


@guarded("cannot lock user ids")
def lock_user_ids(conn: sa.Connection) -> None:
    """Hold the lock on user-id allocation until ``conn``'s transaction ends.

    On SQLite, :func:`write_transaction`'s ``BEGIN IMMEDIATE`` already holds the
    database's one write lock; on PostgreSQL a transaction-scoped advisory lock
    serialises every process that adds or deletes users.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(
            sa.bindparam("key", USER_ID_LOCK, type_=sa.BigInteger))))


# --------------------------------------------------------------------------- loaders
def _fetch_arrays(conn: sa.Connection, sql: str, dtypes: list,
                  params=None) -> list[np.ndarray]:
    """Run ``sql`` and stream its integer columns into numpy arrays, chunk by chunk."""
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        # A named (server-side) cursor: psycopg would otherwise hold every row in
        # client memory before the first fetchmany.
        cursor = raw.cursor(name="anirec_fetch")
        cursor.itersize = FETCH_ROWS
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(sql, params or ())
        parts: list[list[np.ndarray]] = [[] for _ in dtypes]
        width = len(dtypes)
        while True:
            rows = cursor.fetchmany(FETCH_ROWS)
            if not rows:
                break
            # fromiter over the flattened tuples is about 2x faster than np.array(rows).
            flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64,
                               count=width * len(rows)).reshape(-1, width)
            for j, dtype in enumerate(dtypes):
                parts[j].append(flat[:, j].astype(dtype))
    finally:
        cursor.close()
    return [np.concatenate(p) if p else np.empty(0, dtype=d) for p, d in zip(parts, dtypes)]


@guarded("cannot count rows")
def count_rows(engine: sa.Engine) -> dict[str, int]:
    """Row counts of the anime, users and ratings tables."""
    with engine.connect() as conn:
        return {t.__tablename__: int(conn.execute(sa.select(sa.func.count()).select_from(t))
                                     .scalar_one())
                for t in (Anime, User, Rating)}


@guarded("cannot count the anime")
def count_anime(engine: sa.Engine) -> int:
    """How many anime the catalogue has (0 for a new, empty database)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(Anime)).scalar_one())


@guarded("cannot read the catalogue")
def load_anime(engine: sa.Engine) -> pd.DataFrame:
    """The catalogue as the engine expects it (``catalog.CATALOGUE_COLUMNS``, typed).

    ``episodes`` is a nullable Int64, ``rating`` float64 (NaN when unknown),
    ``members`` int64 and the text columns are never null.
    """
    stmt = sa.select(*[getattr(Anime, c) for c in CATALOGUE_COLUMNS]).order_by(Anime.anime_id)
    with engine.connect() as conn:
        frame = pd.read_sql(stmt, conn)
    out = pd.DataFrame({"anime_id": frame["anime_id"].astype(np.int64)})
    for column in CATALOGUE_COLUMNS[1:]:
        out[column] = frame[column]
    out["episodes"] = pd.array(frame["episodes"], dtype="Int64")
    out["rating"] = pd.to_numeric(frame["rating"], errors="coerce").astype(np.float64)
    out["members"] = frame["members"].fillna(0).astype(np.int64)
    for column in ("name", "genre", "type", "english_name", "japanese_name", "synopsis"):
        out[column] = frame[column].fillna("").astype(str)
    return out


@guarded("cannot read the ratings")
def load_ratings(engine: sa.Engine, *, min_user_id: int | None = None) -> pd.DataFrame:
    """All ratings (or those of users with ``user_id > min_user_id``) as a typed frame.

    Columns ``user_id``, ``anime_id`` (int64) and ``rating`` (int8), read in
    chunks with ``fetchmany`` straight into numpy.
    """
    with engine.connect() as conn:
        return ratings_after(conn, min_user_id)


@guarded("cannot read the ratings")
def ratings_after(conn: sa.Connection, min_user_id: int | None) -> pd.DataFrame:
    """:func:`load_ratings` on an open connection (e.g. inside a write transaction)."""
    stmt = sa.select(Rating.user_id, Rating.anime_id, Rating.rating)
    if min_user_id is not None:
        stmt = stmt.where(Rating.user_id > sa.bindparam("min_user_id", int(min_user_id)))
    # Compiled by SQLAlchemy for this dialect and run on the raw DB-API cursor (the
    # fast path of _fetch_arrays); the value stays a bound parameter.
    compiled = stmt.compile(dialect=conn.dialect)
    params = compiled.params
    if compiled.positiontup is not None:
        params = tuple(params[name] for name in compiled.positiontup)
    users, anime, rating = _fetch_arrays(conn, str(compiled), [np.int64, np.int64, np.int8],
                                         params)
    return pd.DataFrame({"user_id": users, "anime_id": anime, "rating": rating})


@guarded("cannot read the users")
def load_users(engine: sa.Engine) -> pd.DataFrame:
    """Users: ``user_id`` (int64), ``source`` ("dataset"/"app"), ``created_at``."""
    stmt = sa.select(User.user_id, User.source, User.created_at).order_by(User.user_id)
    with engine.connect() as conn:
        frame = pd.read_sql(stmt, conn)
    frame["user_id"] = frame["user_id"].astype(np.int64)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


@guarded("cannot read the largest user id")
def max_user_id(conn: sa.Connection) -> int:
    """The largest user id in the database, 0 when there is none."""
    return int(conn.execute(sa.select(sa.func.max(User.user_id))).scalar() or 0)


@guarded("cannot write the meta table")
def set_meta(conn: sa.Connection, key: str, value: str) -> None:
    conn.execute(sa.delete(Meta).where(Meta.key == key))
    conn.execute(sa.insert(Meta).values(key=key, value=value))


# --------------------------------------------------------------------------- revision
#: Meta key of the data revision: a random token replaced by every write that can
#: change rows an on-disk cache already covers (ingest, deleting users). New users
#: get ids above every cached one, so adding them leaves the revision alone.
REVISION_KEY = "data_revision"


@guarded("cannot write the data revision")
def bump_revision(conn: sa.Connection) -> str:
    """Give the data a new revision inside the caller's write transaction; returns it."""
    revision = uuid.uuid4().hex
    set_meta(conn, REVISION_KEY, revision)
    return revision


@guarded("cannot read the data revision")
def data_revision(engine: sa.Engine) -> str:
    """The data's current revision; one is created for a database that has none yet."""
    with engine.connect() as conn:
        revision = conn.execute(sa.select(Meta.value).where(Meta.key == REVISION_KEY)).scalar()
    if revision is None:
        with write_transaction(engine) as conn:
            revision = conn.execute(
                sa.select(Meta.value).where(Meta.key == REVISION_KEY)).scalar()
            if revision is None:
                revision = bump_revision(conn)
    return str(revision)


@guarded("cannot count the ratings")
def count_ratings(conn: sa.Connection) -> int:
    """How many ratings there are (SQLite counts its primary-key B-tree without decoding rows)."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(Rating)).scalar_one())
