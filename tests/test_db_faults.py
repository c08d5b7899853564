"""Database faults on PostgreSQL: cut connections, a database that refuses connections,
an unreachable server. Each run uses its own throwaway database; the server itself is
never stopped (other clients share it), cutting this database's connections is enough.
"""

import os
import socket
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest
import sqlalchemy as sa

from conftest import IN_CI, POSTGRES_URL, ROOT, TINY_PARAMS, fill_tiny_database
from recommender import RecommenderEngine
from recommender.config import Settings
from recommender.data.database import count_rows
from recommender.errors import DatabaseError
from recommender.tools.reliability import verify_consistency

pytestmark = pytest.mark.postgres
PASSWORD = "s3cret-Pw-42"  # trust auth ignores it; it must never be printed


def _admin() -> sa.Engine:
    try:
        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        message = f"PostgreSQL at {POSTGRES_URL} is not usable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return admin


@pytest.fixture
def fault_db(tmp_path):
    """(settings, admin engine, database name) of a fresh database holding the tiny data."""
    admin = _admin()
    name = f"anirec_faults_{uuid.uuid4().hex[:12]}"
    # An identifier cannot be a bound parameter; this one is generated here, never input.
    quoted = admin.dialect.identifier_preparer.quote(name)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
    url = sa.make_url(POSTGRES_URL).set(database=name, password=PASSWORD)
    url_text = url.render_as_string(hide_password=False)
    fill_tiny_database(url_text, tmp_path)
    yield (Settings(database_url=url_text, cache_dir=tmp_path / "cache", params=TINY_PARAMS),
           admin, name)
    with admin.connect() as conn:
        _allow(conn, name, True)
        _cut(conn, name)
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
    admin.dispose()


def _cut(conn, name: str) -> int:
    """Terminate every connection to database ``name``; returns how many."""
    return len(conn.execute(sa.text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name}).all())


def _allow(conn, name: str, allowed: bool) -> None:
    quoted = conn.dialect.identifier_preparer.quote(name)
    conn.exec_driver_sql(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS {str(allowed).lower()}")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_at_start_is_one_clear_line_at_the_cli(tmp_path):
    url = f"postgresql+psycopg://anirec:{PASSWORD}@127.0.0.1:{_closed_port()}/anime"
    with pytest.raises(DatabaseError) as err:
        RecommenderEngine.from_settings(Settings(database_url=url, cache_dir=tmp_path))
    assert "cannot connect" in str(err.value) and PASSWORD not in str(err.value)
    env = {**os.environ, "DATABASE_URL": url, "ANIREC_CACHE_DIR": str(tmp_path)}
    for args in (["search", "naruto"], ["-v", "add-user", "--liked-id", "1"]):
        done = subprocess.run([sys.executable, "-m", "recommender", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: DATABASE_URL="), done.stderr
        assert "cannot connect" in lines[0]
        assert PASSWORD not in done.stderr + done.stdout


def test_a_database_refusing_connections_at_start_then_back(fault_db):
    settings, admin, name = fault_db
    with admin.connect() as conn:
        _allow(conn, name, False)
        _cut(conn, name)
    with pytest.raises(DatabaseError) as err:
        RecommenderEngine.from_settings(settings)
    assert str(err.value).startswith("DATABASE_URL=") and PASSWORD not in str(err.value)
    with admin.connect() as conn:
        _allow(conn, name, True)
    engine = RecommenderEngine.from_settings(settings)  # back: starts without any help
    assert verify_consistency(engine) == []


def test_cut_connections_mid_run_recover_and_failed_writes_are_reported(fault_db):
    settings, admin, name = fault_db
    engine = RecommenderEngine.from_settings(settings)
    first = engine.add_user({1: 10, 2: 8, 3: 2})
    with admin.connect() as conn:
        assert _cut(conn, name) >= 1  # the engine's pooled connection dies
    # pool_pre_ping replaces the dead connection: the next write just works.
    second = engine.add_user({4: 10, 5: 3, 6: 7})
    assert second == first + 1 and engine.catch_up() == 0

    # Now the database refuses connections: a write fails loudly and changes nothing.
    ids, labels = engine.user_ids().copy(), np.sort(engine.knn.index_.labels())
    with admin.connect() as conn:
        _allow(conn, name, False)
        _cut(conn, name)
    with pytest.raises(DatabaseError) as err:
        engine.add_user({7: 10, 8: 2})
    assert "not saved" in str(err.value) and PASSWORD not in str(err.value)
    with pytest.raises(DatabaseError):
        engine.catch_up()
    assert np.array_equal(engine.user_ids(), ids)
    assert np.array_equal(np.sort(engine.knn.index_.labels()), labels)
    assert len(engine.recommend(second, n=3)) == 3  # queries never needed the database
    with admin.connect() as conn:
        _allow(conn, name, True)
    third = engine.add_user({7: 10, 8: 2})
    assert third == second + 1
    assert verify_consistency(engine) == []


@pytest.mark.slow
def test_connections_cut_again_and_again_while_users_are_added(fault_db):
    settings, admin, name = fault_db
    engine = RecommenderEngine.from_settings(settings)
    stop = threading.Event()
    cuts = [0]

    def cutter():
        with admin.connect() as conn:
            while not stop.wait(0.05):
                cuts[0] += _cut(conn, name)

    thread = threading.Thread(target=cutter)
    thread.start()
    saved, failed = [], 0
    rng = np.random.default_rng(0)
    try:
        for _ in range(60):
            picked = rng.choice(np.arange(1, 21), 5, replace=False)
            try:
                saved.append(engine.add_user(
                    {int(a): int(r) for a, r in zip(picked, [10, 2, 7, 5, 9])}))
            except DatabaseError:
                failed += 1
    finally:
        stop.set()
        thread.join(timeout=30)
    print(f"{cuts[0]} connections cut; {len(saved)} users saved, {failed} writes "
          "reported as failed")
    assert saved and cuts[0] > 0
    engine.catch_up()  # a write whose COMMIT went through before its error was reported
    assert verify_consistency(engine) == []
    assert all(engine.has_user(u) for u in saved)
    restarted = RecommenderEngine.from_settings(settings)
    assert verify_consistency(restarted) == []
    assert count_rows(restarted.database)["users"] == len(restarted.user_ids())


@pytest.mark.slow
def test_backends_terminated_every_50_to_150_ms_during_every_database_operation(
        fault_db, tmp_path):
    """Start-up, catch-up, new users and ingest under a stream of killed backends.

    Whatever fails must fail as the package's DatabaseError (one line, no secret);
    afterwards a clean start agrees with the database exactly.
    """
    settings, admin, name = fault_db
    engine = RecommenderEngine.from_settings(settings)
    stop = threading.Event()
    cuts = [0]
    rng = np.random.default_rng(7)

    def cutter():
        with admin.connect() as conn:
            while not stop.wait(float(rng.uniform(0.05, 0.15))):
                cuts[0] += _cut(conn, name)

    outcomes: dict[str, list[str]] = {}

    def attempt(kind: str, action) -> None:
        try:
            action()
            outcomes.setdefault(kind, []).append("ok")
        except DatabaseError as exc:
            message = str(exc)
            assert message.startswith("DATABASE_URL=") and "\n" not in message
            assert PASSWORD not in message
            outcomes.setdefault(kind, []).append("DatabaseError")

    from recommender.data.database import create_db_engine
    from recommender.data.ingest import ingest

    thread = threading.Thread(target=cutter)
    thread.start()
    try:
        for i in range(12):
            attempt("start", lambda: RecommenderEngine.from_settings(settings))
            attempt("catch_up", engine.catch_up)
            picked = rng.choice(np.arange(1, 21), 4, replace=False)
            attempt("add_user", lambda p=picked: engine.add_user(
                {int(a): r for a, r in zip(p, (10, 3, 8, 6))}))
            extra = tmp_path / f"more{i}.csv"
            extra.write_text("user_id,anime_id,rating\n"
                             + "".join(f"{500 + i},{a},7\n" for a in range(1, 6)))

            def ingest_more(path=extra):
                database = create_db_engine(settings.database_url)
                try:
                    ingest(database, None, path)
                finally:
                    database.dispose()

            attempt("ingest", ingest_more)
    finally:
        stop.set()
        thread.join(timeout=30)
    print(f"{cuts[0]} backends terminated; outcomes: "
          + ", ".join(f"{k}: {v.count('ok')} ok, {v.count('DatabaseError')} failed"
                      for k, v in outcomes.items()))
    assert cuts[0] > 0 and sum(v.count("DatabaseError") for v in outcomes.values()) > 0
    restarted = RecommenderEngine.from_settings(settings)
    assert verify_consistency(restarted) == []
    assert count_rows(restarted.database)["users"] == len(restarted.user_ids())
