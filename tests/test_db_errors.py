"""Every path that touches the database fails the same way: one DatabaseError line naming
DATABASE_URL, no driver or pandas error, no traceback, no secret, and within seconds."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, TINY_ENV, TINY_PARAMS, fill_tiny_database, two_taste_groups, write_csvs
from recommender import RecommenderEngine
from recommender.config import Settings
from recommender.data.database import create_db_engine, create_tables
from recommender.data.ingest import ingest
from recommender.errors import DatabaseError

SECRET = "Zq9-never-printed"


class FakeServer:
    """A TCP server on localhost that accepts and then misbehaves."""

    def __init__(self, behaviour: str):
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.clients: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            self.clients.append(client)  # kept open: "silent" never answers
            if self.behaviour == "garbage":
                client.sendall(b"\x00\xffHTTP/1.1 200 OK\r\n\r\n" * 4)
            elif self.behaviour == "close":
                client.close()

    def close(self) -> None:
        self.stop.set()
        for client in self.clients:
            client.close()
        self.sock.close()


def _corrupt(path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))


def _truncate(path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])


@pytest.fixture
def sqlite_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    fill_tiny_database(url, tmp_path)
    return tmp_path / "tiny.db", url


def _check(exc: DatabaseError) -> None:
    message = str(exc)
    assert message.startswith("DATABASE_URL=") and "\n" not in message, message
    assert SECRET not in message


SQLITE_FAULTS = {
    "random bytes": _corrupt,
    "truncated": _truncate,
    "a directory": lambda p: (p.unlink(), p.mkdir()),
    "garbage header": lambda p: p.write_bytes(os.urandom(200)),
}


@pytest.mark.parametrize("fault", sorted(SQLITE_FAULTS))
@pytest.mark.parametrize("entry", ["start", "catch_up", "add_user", "ingest", "build"])
def test_a_broken_sqlite_file_is_one_clear_line_everywhere(sqlite_db, tmp_path, fault, entry):
    path, url = sqlite_db
    settings = Settings(database_url=url, cache_dir=tmp_path / "cache", params=TINY_PARAMS)
    engine = RecommenderEngine.from_settings(settings) if entry in ("catch_up", "add_user") \
        else None
    if engine is not None:
        engine.database.dispose()  # so the next call opens the broken file
    for extra in ("-wal", "-shm"):
        (path.parent / f"{path.name}{extra}").unlink(missing_ok=True)
    SQLITE_FAULTS[fault](path)
    anime, ratings = two_taste_groups()
    csvs = write_csvs(tmp_path, anime, ratings)
    with pytest.raises(DatabaseError) as err:
        if entry == "start":
            RecommenderEngine.from_settings(settings)
        elif entry == "catch_up":
            engine.catch_up()
        elif entry == "add_user":
            engine.add_user({1: 9, 2: 8})
        elif entry == "ingest":
            database = create_db_engine(url, check=False)
            ingest(database, *csvs)
        else:
            RecommenderEngine.from_settings(settings, rebuild=True)
    _check(err.value)


def test_a_read_only_database_refuses_writes_plainly(sqlite_db, tmp_path):
    path, url = sqlite_db
    settings = Settings(database_url=url, cache_dir=tmp_path / "cache", params=TINY_PARAMS)
    RecommenderEngine.from_settings(settings)
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    engine = RecommenderEngine.from_settings(Settings(
        database_url=read_only, cache_dir=tmp_path / "cache", params=TINY_PARAMS))
    users = len(engine.user_ids())
    with pytest.raises(DatabaseError) as err:
        engine.add_user({1: 9, 2: 8})
    _check(err.value)
    assert len(engine.user_ids()) == users
    anime, ratings = two_taste_groups()
    with pytest.raises(DatabaseError) as err:
        one_user = ratings.drop_duplicates("anime_id").assign(user_id=900)
        ingest(engine.database, *write_csvs(tmp_path, anime, one_user))
    _check(err.value)


@pytest.mark.parametrize("behaviour", ["silent", "garbage", "close"])
def test_a_server_that_misbehaves_is_one_line_within_seconds(tmp_path, behaviour):
    server = FakeServer(behaviour)
    url = f"postgresql+psycopg://me:{SECRET}@127.0.0.1:{server.port}/anime"
    try:
        started = time.perf_counter()
        with pytest.raises(DatabaseError) as err:
            RecommenderEngine.from_settings(Settings(database_url=url, cache_dir=tmp_path))
        assert time.perf_counter() - started < 12
        _check(err.value)
        env = {**os.environ, "DATABASE_URL": url, "ANIREC_CACHE_DIR": str(tmp_path), **TINY_ENV}
        started = time.perf_counter()
        for args in (["search", "naruto"], ["build-index"],
                     ["ingest", "--anime", str(ROOT / "data" / "anime.csv")]):
            done = subprocess.run([sys.executable, "-m", "recommender", *args], cwd=ROOT,
                                  env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 1, done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: DATABASE_URL="), done.stderr
            assert SECRET not in done.stderr + done.stdout and "Traceback" not in done.stderr
        assert time.perf_counter() - started < 3 * 20
    finally:
        server.close()


def test_the_cli_on_a_corrupt_file_is_one_line(sqlite_db, tmp_path):
    path, url = sqlite_db
    _corrupt(path)
    env = {**os.environ, "DATABASE_URL": url, "ANIREC_CACHE_DIR": str(tmp_path / "c"),
           **TINY_ENV}
    for args in (["search", "x"], ["build-index"], ["add-user", "--liked-id", "1"],
                 ["ingest", "--anime", str(ROOT / "data" / "anime.csv")]):
        done = subprocess.run([sys.executable, "-m", "recommender", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: DATABASE_URL="), done.stderr


def test_sqlite_driver_errors_are_among_those_caught():
    from recommender.data.database import DRIVER_ERRORS

    assert issubclass(sqlite3.DatabaseError, DRIVER_ERRORS)
    import pandas as pd
    import psycopg

    assert issubclass(pd.errors.DatabaseError, DRIVER_ERRORS)
    assert issubclass(psycopg.OperationalError, DRIVER_ERRORS)
    _ = create_tables  # the table creation path is wrapped too (see the start cases)
