"""The real server: ``python -m recommender serve`` in a child process, talked to with httpx.

One worker first (health, a read, a new user visible afterwards), then two
workers on the same database: a user created through one is served by both,
and so are the users of the first run (loaded at start).
"""

from __future__ import annotations

import os
import time

import httpx
import pytest

from conftest import TINY_ENV, fill_tiny_database
from recommender.tools.loadtest import Server

KEY = "server-test-key"
pytestmark = pytest.mark.slow


def wait_ready(server: Server, timeout: float = 120.0) -> None:
    """Poll /health until 200; every answer before it must be 503 EngineStartingError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.log_text()[-2000:]
        try:
            response = httpx.get(server.base + "/health", timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if response.status_code == 200:
            return
        assert response.status_code == 503, response.text
        assert response.json()["error"]["type"] == "EngineStartingError"
        time.sleep(0.2)
    raise AssertionError(f"not ready in {timeout} s: {server.log_text()[-2000:]}")


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
    server = Server(env, 1, directory / "one.log", access_log=True)
    try:
        wait_ready(server)
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
    server = Server(env, 2, directory / "two.log", access_log=True)
    try:
        # Both workers must be up: each answers /health once its engine is ready.
        server.wait_ready(workers=2, timeout=120)
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
