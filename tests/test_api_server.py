"""The real server: ``python -m recommender serve`` in a child process, talked to with httpx.

One worker first (health, a read, a new user visible afterwards), then two
workers on the same database: a user created through one is served by both,
and so are the users of the first run (loaded at start).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, TINY_ENV, fill_tiny_database

KEY = "server-test-key"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, env: dict, workers: int, log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "recommender", "serve", "--port", str(self.port),
             "--workers", str(workers)], cwd=ROOT, env=env, stdout=self._out,
            stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> list[int]:
        """Poll /health until 200; returns every status seen (503 while starting)."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            try:
                response = httpx.get(self.base + "/health", timeout=5)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            seen.append(response.status_code)
            if response.status_code == 200:
                return seen
            assert response.status_code == 503, response.text
            assert response.json()["error"]["type"] == "EngineStartingError"
            time.sleep(0.2)
        raise AssertionError(f"not ready in {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()
        return self.log.read_text()


@pytest.fixture(scope="module")
def server_env(tmp_path_factory):
    directory = tmp_path_factory.mktemp("server")
    url = f"sqlite:///{directory / 'server.db'}"
    fill_tiny_database(url, directory)
    env = {**os.environ, **TINY_ENV, "DATABASE_URL": url,
           "ANIREC_CACHE_DIR": str(directory / "cache"), "API_KEY": KEY,
           "CORS_ORIGINS": "https://anime.example.org"}
    return env, directory


def served_by(base: str, user_id: int, workers: int, attempts: int = 80) -> dict[str, int]:
    """Status per worker token for ``user_id``, over new connections until every worker answered."""
    seen: dict[str, int] = {}
    for _ in range(attempts):
        with httpx.Client(timeout=10) as client:  # a new connection: any worker may take it
            response = client.get(base + "/recommend", params={"user_id": user_id, "n": 3})
        token = response.headers["x-served-by"]
        if seen.get(token) != 200:
            seen[token] = response.status_code
        if len(seen) >= workers and all(code == 200 for code in seen.values()):
            break
        time.sleep(0.05)
    return seen


def test_one_worker_serves_reads_and_writes(server_env):
    env, directory = server_env
    server = Server(env, 1, directory / "one.log")
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=30) as client:
            health = client.get("/health").json()
            assert health["status"] == "ok" and health["users"] == 40
            response = client.get("/recommend", params={"user_id": 2, "n": 5})
            assert response.status_code == 200 and len(response.json()["items"]) == 5
            assert client.get("/search", params={"q": "scifi 3"}).json()["items"][0][
                "anime_id"] == 3
            error = client.get("/recommend", params={"user_id": 999})
            assert error.status_code == 404
            assert error.json()["error"]["type"] == "UnknownUserError"
            assert client.post("/users", json={"liked": {"1": 10}}).status_code == 401
            created = client.post("/users", json={"liked": {"11": 10, "12": 9}},
                                  headers={"X-API-Key": KEY})
            assert created.status_code == 201, created.text
            user_id = created.json()["user_id"]
            mine = client.get("/recommend", params={"user_id": user_id, "n": 3})
            assert mine.status_code == 200
            assert all(i["name"].startswith("Romance") for i in mine.json()["items"])
            assert client.get("/health").json()["users"] == 41
            cors = client.get("/health", headers={"Origin": "https://anime.example.org"})
            assert cors.headers["access-control-allow-origin"] == "https://anime.example.org"
            assert client.get("/openapi.json").status_code == 200
    finally:
        log = server.stop()
    assert "Traceback" not in log and KEY not in log
    (directory / "first_user").write_text(str(user_id))


def test_two_workers_serve_users_created_through_the_other(server_env):
    env, directory = server_env
    earlier = int((directory / "first_user").read_text())
    server = Server(env, 2, directory / "two.log")
    try:
        server.wait_ready()
        # Both workers must be up: each answers /health once its engine is ready.
        seen = {}
        for _ in range(200):
            with httpx.Client(timeout=10) as client:
                response = client.get(server.base + "/health")
            seen[response.headers["x-served-by"]] = response.status_code
            if len(seen) == 2 and set(seen.values()) == {200}:
                break
            time.sleep(0.1)
        assert len(seen) == 2, seen
        created = []
        for liked in ({"1": 10, "2": 9}, {"13": 8, "14": None}, {"5": 10}):
            with httpx.Client(timeout=30) as client:
                response = client.post(server.base + "/users", json={"liked": liked},
                                       headers={"X-API-Key": KEY})
            assert response.status_code == 201, response.text
            created.append(response.json()["user_id"])
        assert len(set(created)) == 3 and earlier < min(created)
        for user_id in [earlier, *created]:
            statuses = served_by(server.base, user_id, workers=2)
            assert len(statuses) == 2 and set(statuses.values()) == {200}, (user_id, statuses)
    finally:
        log = server.stop()
    assert "Traceback" not in log and KEY not in log
