"""Bulk writes of validated rating columns into PostgreSQL, near the speed of a plain COPY.

Where the time went (full 2016 shape, 7.85M rows, before this module): the
text COPY itself was cheap, but each row then went through ``INSERT ... SELECT
... ON CONFLICT`` into the keyed table, which updates the primary-key B-tree
row by row and fires two foreign-key triggers per row (users, anime), and the
text was built by ``DataFrame.to_csv``. Here:

- rows go out in COPY's binary format, built by NumPy as one structured array
  per chunk (no text formatting, no parsing on the server);
- into an *empty* ratings table, the primary key and foreign keys are dropped,
  the rows are copied straight in, and the key and foreign keys are added back,
  each checked over the whole table in one pass (as ``pg_restore`` does). It is
  all one transaction, so an error anywhere leaves the table and its
  constraints as they were; the table is locked for the duration;
- into a table that already has rows, they are copied into an unindexed
  temporary table and merged by one ``INSERT ... SELECT ... ON CONFLICT DO
  NOTHING``, so pairs already present are skipped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sqlalchemy as sa

#: COPY's binary header: signature, flags, header-extension length.
_HEADER = b"PGCOPY\n\xff\r\n\x00" + np.array([0, 0], ">i4").tobytes()
_TRAILER = np.array([-1], ">i2").tobytes()
#: One tuple: field count, then (length, value) for int4, int4, int2; big-endian.
_ROW = np.dtype([("n", ">i2"), ("l1", ">i4"), ("user", ">i4"), ("l2", ">i4"),
                 ("anime", ">i4"), ("l3", ">i4"), ("rating", ">i2")])


def binary_rows(users: np.ndarray, anime: np.ndarray, rating: np.ndarray) -> bytes:
    """The COPY BINARY tuples of (integer, integer, smallint) rows, without header."""
    out = np.empty(len(users), dtype=_ROW)
    out["n"], out["l1"], out["l2"], out["l3"] = 3, 4, 4, 2
    out["user"], out["anime"], out["rating"] = users, anime, rating
    return out.tobytes()


def copy_binary(conn: sa.Connection, table: str, columns: tuple[np.ndarray, ...],
                chunk_rows: int, advance: Callable[[int], None]) -> None:
    """COPY ``columns`` (user, anime, rating) into ``table`` in binary, chunk by chunk."""
    users, anime, rating = columns
    cursor = conn.connection.driver_connection.cursor()
    sql = f"COPY {table} (user_id, anime_id, rating) FROM STDIN (FORMAT BINARY)"
    with cursor.copy(sql) as copy:
        copy.write(_HEADER)
        for start in range(0, len(users), chunk_rows):
            stop = start + chunk_rows
            copy.write(binary_rows(users[start:stop], anime[start:stop], rating[start:stop]))
            advance(len(users[start:stop]))
        copy.write(_TRAILER)


def _key_constraints(conn: sa.Connection, table: str) -> list[tuple[str, str, str]]:
    """(name, kind, definition) of the table's primary-key and foreign-key constraints."""
    rows = conn.exec_driver_sql(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %(table)s::regclass AND contype IN ('p', 'f') "
        "ORDER BY contype DESC, conname", {"table": table}).all()
    return [(str(name), str(kind), str(definition)) for name, kind, definition in rows]


def is_empty_locked(conn: sa.Connection, table: str) -> bool:
    """Lock ``table`` against every other reader and writer and say whether it is empty.

    Taken before checking, so no other process can add a row between the check
    and the load; the lock lasts until the transaction ends.
    """
    conn.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    return conn.exec_driver_sql(f"SELECT NOT EXISTS (SELECT 1 FROM {table})").scalar()


def load_into_empty(conn: sa.Connection, table: str, columns: tuple[np.ndarray, ...],
                    chunk_rows: int, advance: Callable[[int], None]) -> None:
    """Copy rows into the empty ``table`` with its keys dropped, then restore the keys.

    The caller has validated the rows (no repeated pair, known anime) and
    inserted their users; the restored constraints check all of it again on
    the server, so a repeated pair or an unknown id still fails the ingest.
    """
    constraints = _key_constraints(conn, table)
    # Sorting for the key build is the bulk of the work; give it room (this
    # transaction only).
    conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
    # The foreign-key checks are one anti-join each; in memory it is a hash join.
    conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
    for name, _, _ in constraints:
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    copy_binary(conn, table, columns, chunk_rows, advance)
    for name, _, definition in constraints:
        conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def merge_into(conn: sa.Connection, table: str, columns: tuple[np.ndarray, ...],
               chunk_rows: int, advance: Callable[[int], None]) -> None:
    """Copy rows into a temporary table, then insert those whose pair is new."""
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE ratings_in (user_id integer, anime_id integer, "
        "rating smallint) ON COMMIT DROP")
    copy_binary(conn, "ratings_in", columns, chunk_rows, advance)
    conn.exec_driver_sql(
        f"INSERT INTO {table} (user_id, anime_id, rating) "
        "SELECT user_id, anime_id, rating FROM ratings_in ON CONFLICT DO NOTHING")


def insert_users(conn: sa.Connection, user_ids: np.ndarray, now) -> None:
    """Insert the distinct ``user_ids`` as data-set users, skipping ids already present."""
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE users_in (user_id integer) ON COMMIT DROP")
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy("COPY users_in (user_id) FROM STDIN (FORMAT BINARY)") as copy:
        rows = np.empty(len(user_ids), dtype=[("n", ">i2"), ("l", ">i4"), ("user", ">i4")])
        rows["n"], rows["l"], rows["user"] = 1, 4, user_ids
        copy.write(_HEADER + rows.tobytes() + _TRAILER)
    conn.exec_driver_sql(
        "INSERT INTO users (user_id, source, created_at) "
        "SELECT user_id, 'dataset', %(now)s FROM users_in ON CONFLICT DO NOTHING",
        {"now": now})
