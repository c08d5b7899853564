"""The HTTP API through FastAPI's TestClient: every endpoint, every error path, the key, CORS."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from conftest import TINY_PARAMS, fill_tiny_database
from recommender import RecommenderEngine
from recommender.api import guards
from recommender.api.app import create_app
from recommender.api.settings import ApiSettings, load_api_settings
from recommender.config import Settings
from recommender.data import database as db
from recommender.errors import ConfigurationError, DatabaseError

KEY = "k3y-for-tests"
ORIGIN = "https://anime.example.org"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    directory = tmp_path_factory.mktemp("api")
    url = f"sqlite:///{directory / 'api.db'}"
    fill_tiny_database(url, directory)
    return Settings(database_url=url, cache_dir=directory / "cache", params=TINY_PARAMS)


@pytest.fixture(scope="module")
def engine(settings):
    return RecommenderEngine.from_settings(settings)


def make_client(engine, **api) -> TestClient:
    api = {"api_key": KEY, "cors_origins": (ORIGIN,), **api}
    return TestClient(create_app(api_settings=ApiSettings(**api), engine=engine))


@pytest.fixture(scope="module")
def client(engine):
    return make_client(engine)


def error_of(response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) <= {"error", "progress"} and set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == kind
    assert "Traceback" not in response.text
    return body["error"]["message"]


# --------------------------------------------------------------------------- endpoints
def test_health(client, engine):
    body = client.get("/health").json()
    stats = engine.stats()
    assert body == {"status": "ok", "users": stats["users"], "anime": stats["anime"],
                    "ratings": stats["ratings"], "index": engine.build_info["index"],
                    "revision": engine.data_revision}
    assert body["index"] in ("loaded", "built") and body["revision"]


def test_recommend_for_a_user_is_the_engines_answer_with_its_defaults(client, engine):
    response = client.get("/recommend", params={"user_id": 2, "n": 5})
    assert response.status_code == 200
    body = response.json()
    frame = engine.recommend(2, n=5)
    assert [i["anime_id"] for i in body["items"]] == frame["anime_id"].tolist()
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    assert body["method"] == frame.attrs["method"] and body["fallback"] is False
    assert body["requested"] == frame.attrs["requested"]
    assert body["weight"] == frame.attrs["weight"]  # the engine's default (None unless hybrid)
    assert body["requested"] == engine.default_algorithm
    item = body["items"][0]
    assert set(item) == {"rank", "anime_id", "name", "english_name", "score", "reason", "genre",
                         "type", "episodes", "community_rating", "members", "url"}
    assert item["url"] == f"https://myanimelist.net/anime/{item['anime_id']}"
    assert item["reason"] and item["name"].startswith("SciFi")  # user 2 likes sci-fi
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_recommend_passes_every_argument(client, engine):
    for algorithm in engine.algorithms:
        response = client.get("/recommend", params={"user_id": 3, "algorithm": algorithm, "n": 3})
        assert response.status_code == 200, (algorithm, response.text)
        assert response.json()["requested"] == algorithm
    body = client.get("/recommend", params={"user_id": 3, "algorithm": "hybrid", "weight": 0.2,
                                            "k": 5,
                                            "collaborative": engine.collaborative_algorithms[-1],
                                            "diversity": 0.5, "n": 4}).json()
    frame = engine.recommend(3, algorithm="hybrid", weight=0.2, k=5,
                             collaborative=engine.collaborative_algorithms[-1], diversity=0.5, n=4)
    assert body["weight"] == pytest.approx(0.2)
    assert [i["anime_id"] for i in body["items"]] == frame["anime_id"].tolist()


@pytest.mark.parametrize("params, status, kind, words", [
    ({"user_id": 999}, 404, "UnknownUserError", "unknown user 999"),
    ({"user_id": 2**40}, 404, "UnknownUserError", "unknown user"),
    ({}, 422, "InvalidParameterError", "user_id is required"),
    ({"user_id": "abc"}, 422, "InvalidParameterError", "user_id must be a whole number"),
    ({"user_id": 2.5}, 422, "InvalidParameterError", "user_id must be a whole number"),
    ({"user_id": 2, "n": 0}, 422, "InvalidParameterError", "n must be between 1 and 500"),
    ({"user_id": 2, "n": 501}, 422, "InvalidParameterError", "n must be between 1 and 500"),
    ({"user_id": 2, "k": 9999}, 422, "InvalidParameterError", "k must be between 1 and 500"),
    ({"user_id": 2, "weight": 2}, 422, "InvalidParameterError", "weight must be in [0, 1]"),
    ({"user_id": 2, "weight": "nan"}, 422, "InvalidParameterError", "weight must be in [0, 1]"),
    ({"user_id": 2, "weight": "x"}, 422, "InvalidParameterError", "weight must be a number"),
    ({"user_id": 2, "diversity": -1}, 422, "InvalidParameterError", "diversity must be in"),
    ({"user_id": 2, "algorithm": "magic"}, 422, "UnknownAlgorithmError", "unknown algorithm"),
    ({"user_id": 2, "collaborative": "content"}, 422, "UnknownAlgorithmError",
     "unknown collaborative algorithm"),
])
def test_recommend_errors(client, params, status, kind, words):
    assert words in error_of(client.get("/recommend", params=params), status, kind)


def test_recommend_a_what_if_list(client, engine):
    liked = {"1": 10, "3": None, "5": -1, "424242": 8}
    response = client.post("/recommend", json={"liked": liked, "n": 4, "algorithm": "content"})
    assert response.status_code == 200, response.text
    body = response.json()
    frame = engine.recommend(liked={1: 10, 3: None, 5: -1, 424242: 8}, n=4, algorithm="content")
    assert body["unknown_ids"] == [424242]
    assert [i["anime_id"] for i in body["items"]] == frame["anime_id"].tolist()
    assert not {1, 3, 5} & {i["anime_id"] for i in body["items"]}  # never the listed ones


@pytest.mark.parametrize("body, kind, words", [
    ({"liked": {}}, "EmptyInputError", "empty"),
    ({"liked": {"424242": 9}}, "EmptyInputError", "none of the listed anime"),
    ({"liked": {"abc": 9}}, "InvalidParameterError", "anime id 'abc' is not a whole number"),
    ({"liked": {"1": 11}}, "InvalidParameterError", "must be -1 (watched) or 1..10"),
    ({"liked": {"1": "great"}}, "InvalidParameterError", "liked.1 must be a number"),
    ({"liked": {"1": 9}, "n": 0}, "InvalidParameterError", "n must be between 1 and 500"),
    ({"liked": {"1": 9}, "algorithm": 5}, "InvalidParameterError", "algorithm"),
    ({"liked": {"1": 9}, "extra": 1}, "InvalidParameterError", "extra is not a field"),
    ({}, "InvalidParameterError", "liked is required"),
    ({"liked": [1, 2]}, "InvalidParameterError", "liked"),
])
def test_what_if_errors(client, body, kind, words):
    assert words in error_of(client.post("/recommend", json=body), 422, kind)


def test_what_if_malformed_json(client):
    response = client.post("/recommend", content=b"{not json",
                           headers={"Content-Type": "application/json"})
    assert "not valid JSON" in error_of(response, 422, "InvalidParameterError")


def test_search(client, engine):
    body = client.get("/search", params={"q": "scifi 7", "limit": 3}).json()
    assert len(body["items"]) == 3
    assert body["items"][0] == {"anime_id": 7, "name": "SciFi 7", "matched": "SciFi 7",
                                "score": pytest.approx(100.0)}
    assert client.get("/search", params={"q": "zzzzqqqq"}).json() == {"items": []}
    assert "too long" in error_of(client.get("/search", params={"q": "x" * 201}), 422,
                                  "InvalidParameterError")
    assert "limit must be between" in error_of(client.get("/search", params={"q": "a",
                                                                             "limit": 0}),
                                               422, "InvalidParameterError")
    assert "q is required" in error_of(client.get("/search"), 422, "InvalidParameterError")


def test_neighbors(client, engine):
    body = client.get("/neighbors", params={"user_id": 2, "k": 5}).json()
    frame = engine.neighbors(2, k=5)
    assert [i["user_id"] for i in body["items"]] == frame["user_id"].tolist()
    assert body["recall"] is None and body["exact"] is False
    assert set(body["items"][0]) == {"user_id", "similarity", "shared"}
    exact = client.get("/neighbors", params={"user_id": 2, "k": 5, "exact": "true"}).json()
    assert exact["exact"] is True and 0 <= exact["recall"] <= 1
    assert [i["user_id"] for i in exact["items"]] == \
        engine.neighbors(2, k=5, exact=True)["user_id"].tolist()
    error_of(client.get("/neighbors", params={"user_id": 999}), 404, "UnknownUserError")
    assert "exact must be true or false" in error_of(
        client.get("/neighbors", params={"user_id": 2, "exact": "maybe"}), 422,
        "InvalidParameterError")
    error_of(client.get("/neighbors", params={"user_id": 2, "k": 0}), 422,
             "InvalidParameterError")


def test_anime_and_similar(client, engine):
    body = client.get("/anime/7").json()
    assert body["anime_id"] == 7 and body["name"] == "SciFi 7"
    assert body["url"] == "https://myanimelist.net/anime/7" and "Sci-Fi" in body["genre"]
    assert "unknown anime 424242" in error_of(client.get("/anime/424242"), 404,
                                              "UnknownAnimeError")
    error_of(client.get("/anime/abc"), 422, "InvalidParameterError")
    similar = client.get("/anime/7/similar", params={"n": 3}).json()
    frame = engine.similar_anime(7, n=3)
    assert [i["anime_id"] for i in similar["items"]] == frame["anime_id"].tolist()
    assert similar["model"] in engine.similar_models
    for model in engine.similar_models:
        assert client.get("/anime/7/similar", params={"model": model}).json()["model"] == model
    error_of(client.get("/anime/424242/similar"), 404, "UnknownAnimeError")
    assert "unknown similarity model" in error_of(
        client.get("/anime/7/similar", params={"model": "popularity"}), 422,
        "UnknownAlgorithmError")


def test_unknown_path_and_method(client):
    error_of(client.get("/nowhere"), 404, "NotFoundError")
    error_of(client.delete("/users"), 405, "MethodNotAllowedError")


def test_openapi_and_docs(client):
    schema = client.get("/openapi.json").json()
    assert {"/health", "/recommend", "/search", "/neighbors", "/anime/{anime_id}",
            "/anime/{anime_id}/similar", "/users"} <= set(schema["paths"])
    errors = schema["paths"]["/recommend"]["get"]["responses"]["422"]
    assert errors["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "swagger" in client.get("/docs").text.lower()


# --------------------------------------------------------------------------- writes and the key
def test_new_user_needs_the_key_then_is_served_and_saved(client, engine, settings):
    liked = {"liked": {"11": 10, "12": 9, "13": None}}
    assert "X-API-Key" in error_of(client.post("/users", json=liked), 401, "MissingAPIKeyError")
    assert "does not match" in error_of(
        client.post("/users", json=liked, headers={"X-API-Key": KEY + "x"}), 403, "APIKeyError")
    before = len(engine.user_ids())
    response = client.post("/users", json=liked, headers={"X-API-Key": KEY})
    assert response.status_code == 201, response.text
    user_id = response.json()["user_id"]
    assert len(engine.user_ids()) == before + 1
    assert client.get("/recommend", params={"user_id": user_id}).status_code == 200
    database = db.create_db_engine(settings.database_url)
    assert user_id in db.load_users(database)["user_id"].tolist()
    database.dispose()
    # Bad input with the key is the package's 422, and nothing is saved.
    error_of(client.post("/users", json={"liked": {"1": 9.5}}, headers={"X-API-Key": KEY}),
             422, "InvalidParameterError")
    error_of(client.post("/users", json={"liked": {}}, headers={"X-API-Key": KEY}),
             422, "EmptyInputError")
    assert len(engine.user_ids()) == before + 1


def test_the_key_is_compared_in_constant_time(client, monkeypatch):
    calls = []
    real = guards.hmac.compare_digest
    monkeypatch.setattr(guards.hmac, "compare_digest",
                        lambda a, b: calls.append((a, b)) or real(a, b))
    client.post("/users", json={"liked": {"1": 9}}, headers={"X-API-Key": "guess"})
    assert calls == [(b"guess", KEY.encode())]


def test_writes_are_disabled_without_a_key(engine):
    closed = make_client(engine, api_key=None)
    for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": "anything"}):
        message = error_of(closed.post("/users", json={"liked": {"1": 9}}, headers=headers),
                           403, "APIKeyError")
        assert "API_KEY" in message
    assert closed.get("/recommend", params={"user_id": 2}).status_code == 200  # reads still work


def test_writes_are_rate_limited_per_client(engine):
    limited = make_client(engine, writes_per_minute=2)
    headers = {"X-API-Key": KEY}
    codes = [limited.post("/users", json={"liked": {"2": 8}}, headers=headers).status_code
             for _ in range(2)]
    assert codes == [201, 201]
    response = limited.post("/users", json={"liked": {"2": 8}}, headers=headers)
    assert "at most 2 new users per minute" in error_of(response, 429, "QuotaExceededError")
    assert int(response.headers["retry-after"]) > 0


def test_users_added_by_another_process_are_served(client, engine, settings):
    other = RecommenderEngine.from_settings(settings)  # as another worker would be
    # A miss a moment earlier has just looked in the database; the new user must be
    # found all the same (a time limit on look-ups once answered 404 here).
    above = int(engine.user_ids()[-1]) + 1000
    error_of(client.get("/recommend", params={"user_id": above}), 404, "UnknownUserError")
    user_id = other.add_user({4: 10, 6: 9})
    response = client.get("/recommend", params={"user_id": user_id, "n": 3})
    assert response.status_code == 200, response.text


def test_a_miss_below_the_largest_id_does_not_ask_the_database(client, engine, monkeypatch):
    client.get("/recommend", params={"user_id": 3})  # the periodic look, if due, runs here
    looks = []
    real = db.ratings_after
    monkeypatch.setattr(db, "ratings_after", lambda conn, after: looks.append(after)
                        or real(conn, after))
    largest = int(engine.user_ids()[-1])
    gap = next(i for i in range(1, largest) if not engine.has_user(i))
    for _ in range(3):
        error_of(client.get("/recommend", params={"user_id": gap}), 404, "UnknownUserError")
    assert looks == []  # ids are committed in order, so a gap is never filled later
    error_of(client.get("/recommend", params={"user_id": largest + 1}), 404, "UnknownUserError")
    assert looks == [largest]


# --------------------------------------------------------------------------- CORS and sizes
def test_cors_allows_the_configured_origins_only(client, engine):
    allowed = client.get("/health", headers={"Origin": ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    other = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options("/users", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key"})
    assert preflight.status_code == 200
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    # Errors carry the header too, so a page can read the message.
    assert client.get("/recommend", params={"user_id": 999}, headers={"Origin": ORIGIN}
                      ).headers["access-control-allow-origin"] == ORIGIN
    no_cors = make_client(engine, cors_origins=())
    assert "access-control-allow-origin" not in no_cors.get(
        "/health", headers={"Origin": ORIGIN}).headers


def test_bodies_over_the_limit_are_413(engine):
    small = make_client(engine, max_body_bytes=2048)
    big = {"liked": {str(i): 9 for i in range(1, 400)}}
    message = error_of(small.post("/recommend", json=big), 413, "RequestTooLargeError")
    assert "2048 bytes" in message
    error_of(small.post("/users", json=big, headers={"X-API-Key": KEY}), 413,
             "RequestTooLargeError")

    def chunks():  # no Content-Length: the limit applies to the bytes as they arrive
        yield b'{"liked": {'
        for i in range(1, 400):
            yield f'"{i}": 9, '.encode()
        yield b'"1": 9}}'

    error_of(small.post("/recommend", content=chunks(),
                        headers={"Content-Type": "application/json"}), 413,
             "RequestTooLargeError")
    assert small.post("/recommend", json={"liked": {"1": 9}}).status_code == 200


def test_engine_list_bound_is_the_packages_422(client):
    too_many = {"liked": {str(i): 9 for i in range(1, 5003)}}
    assert "at most 5000" in error_of(client.post("/recommend", json=too_many), 422,
                                      "InvalidParameterError")


# --------------------------------------------------------------------------- start-up and failures
def test_503_with_progress_while_the_engine_starts(engine):
    release = threading.Event()

    def starter(progress):
        progress("index", 0.6)
        release.wait(30)
        return engine

    client = TestClient(create_app(api_settings=ApiSettings(api_key=KEY), starter=starter))
    with client:
        response = client.get("/health")
        message = error_of(response, 503, "EngineStartingError")
        assert "starting" in message
        assert response.json()["progress"] == {"stage": "index", "fraction": 0.6}
        assert response.headers["retry-after"]
        error_of(client.get("/recommend", params={"user_id": 2}), 503, "EngineStartingError")
        error_of(client.post("/users", json={"liked": {"1": 9}}, headers={"X-API-Key": KEY}),
                 503, "EngineStartingError")
        release.set()
        for _ in range(100):
            if client.get("/health").status_code == 200:
                break
            threading.Event().wait(0.05)
        assert client.get("/recommend", params={"user_id": 2}).status_code == 200


def test_503_when_the_database_is_unreachable(tmp_path):
    url = "postgresql+psycopg://anime:hunter2secret@127.0.0.1:9/anime"
    settings = Settings(database_url=url, cache_dir=tmp_path / "cache", params=TINY_PARAMS)
    client = TestClient(create_app(settings, api_settings=ApiSettings(api_key=KEY)))
    with client:
        response = client.get("/health")
        for _ in range(200):
            if response.json()["error"]["type"] != "EngineStartingError":
                break
            threading.Event().wait(0.05)
            response = client.get("/health")
        message = error_of(response, 503, "DatabaseError")
        assert "DATABASE_URL" in message and "hunter2secret" not in response.text
        error_of(client.get("/search", params={"q": "a"}), 503, "DatabaseError")


def test_an_unexpected_failure_is_a_500_without_traceback(engine, monkeypatch, caplog):
    client = make_client(engine)

    def broken(*args, **kwargs):
        raise RuntimeError("boom at postgresql://u:hunter2secret@db/x\nsecond line")

    monkeypatch.setattr(engine, "search", broken)
    response = client.get("/search", params={"q": "a"})
    message = error_of(response, 500, "InternalError")
    assert "boom" not in message and "hunter2secret" not in response.text
    logged = [r for r in caplog.records if "unexpected RuntimeError" in r.getMessage()]
    assert logged and all(r.exc_info is None for r in logged)
    assert "hunter2secret" not in caplog.text and "second line" not in caplog.text


def test_a_start_that_fails_is_retried(engine, monkeypatch):
    from recommender.api import state

    monkeypatch.setattr(state, "RETRY_SECONDS", 0.0)
    attempts = []

    def starter(progress):
        attempts.append(1)
        if len(attempts) == 1:
            raise DatabaseError("DATABASE_URL=sqlite:///x: cannot connect")
        return engine

    client = TestClient(create_app(api_settings=ApiSettings(), starter=starter))
    status = None
    for _ in range(200):
        status = client.get("/health").status_code
        if status == 200:
            break
        threading.Event().wait(0.02)
    assert status == 200 and len(attempts) == 2


# --------------------------------------------------------------------------- settings
def test_api_settings_from_the_environment():
    settings = load_api_settings({"API_KEY": " s3cret ", "CORS_ORIGINS":
                                  "https://a.example, https://b.example/ ,",
                                  "API_WRITES_PER_MINUTE": "7", "API_MAX_BODY_BYTES": "4096"})
    assert settings.api_key == "s3cret" and settings.writes_enabled
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert (settings.writes_per_minute, settings.max_body_bytes) == (7, 4096)
    assert "s3cret" not in repr(settings) and settings.threads >= 1
    empty = load_api_settings({})
    assert empty.api_key is None and not empty.writes_enabled and empty.cors_origins == ()
    with pytest.raises(ConfigurationError, match="API_WRITES_PER_MINUTE"):
        load_api_settings({"API_WRITES_PER_MINUTE": "lots"})


def test_health_answers_while_slow_requests_hold_every_pool_thread(engine, monkeypatch):
    import asyncio
    import time

    import httpx

    app = create_app(api_settings=ApiSettings(api_key=KEY, threads=2), engine=engine)
    real = engine.search
    finished = []

    def slow(*args, **kwargs):
        time.sleep(1.0)
        finished.append(time.monotonic())
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "search", slow)

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            searches = [asyncio.create_task(client.get("/search", params={"q": "scifi"}))
                        for _ in range(4)]  # twice the pool: two wait in its queue
            await asyncio.sleep(0.1)
            health = await client.get("/health")
            answered = time.monotonic()
            results = await asyncio.gather(*searches)
        return health, answered, results

    health, answered, results = asyncio.run(scenario())
    assert health.status_code == 200
    assert finished and answered < min(finished)  # before even the first slow one ended
    assert [r.status_code for r in results] == [200] * 4
    assert len(finished) == 4 and max(finished) - min(finished) >= 0.9  # two rounds of two


def test_a_write_limit_of_zero_disables_writes(engine):
    closed = make_client(engine, writes_per_minute=0)
    message = error_of(closed.post("/users", json={"liked": {"1": 9}},
                                   headers={"X-API-Key": KEY}), 403, "APIKeyError")
    assert "API_WRITES_PER_MINUTE" in message
