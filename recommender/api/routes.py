"""The endpoints. Each checks nothing itself: the engine's own checks give every 422 and 404.

Optional arguments left out are not passed on, so the defaults are the
engine's (the product's), wherever they are defined.
"""

from __future__ import annotations

import inspect
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse

from recommender.api import convert, schemas
from recommender.api.guards import WriteLimiter, check_key
from recommender.api.settings import ApiSettings
from recommender.api.state import EngineHolder
from recommender.core.validate import MAX_ID
from recommender.errors import APIKeyError
from recommender.serving import requests
from recommender.serving.engine import RecommenderEngine
from recommender.serving.search import MAX_QUERY_LENGTH


def _errors(*codes: int) -> dict:
    text = {401: "no X-API-Key header", 403: "wrong key, or writes disabled (no API_KEY)",
            404: "unknown user or anime", 413: "request body too large",
            422: "invalid parameter (the message says which and why)",
            429: "too many writes from this client",
            503: "the engine is starting, or the database is unreachable"}
    return {code: {"model": schemas.ErrorBody, "description": text[code]} for code in codes}


def _given(**values) -> dict:
    """The arguments the client gave (None = left out, so the engine's default applies)."""
    return {name: value for name, value in values.items() if value is not None}


def _range(low: float, high: float) -> dict:
    """Bounds shown in the schema; the engine checks them, with its own message."""
    return {"minimum": low, "maximum": high}


UserId = Annotated[int, Query(description="a known user id", json_schema_extra=_range(0, MAX_ID))]
Algorithm = Annotated[str | None, Query(description="hybrid (default), user-user, content, "
                                                    "popularity, mf, ease, blend, random")]
Weight = Annotated[float | None, Query(description="the hybrid's collaborative share",
                                       json_schema_extra=_range(0, 1))]
N = Annotated[int | None, Query(description="how many anime",
                                json_schema_extra=_range(1, requests.MAX_N))]
K = Annotated[int | None, Query(description="neighbours",
                                json_schema_extra=_range(1, requests.MAX_K))]
Collaborative = Annotated[str | None, Query(description="the hybrid's collaborative part")]
Diversity = Annotated[float | None, Query(description="0 = plain ranking, 1 = most varied",
                                          json_schema_extra=_range(0, 1))]
AnimeId = Annotated[int, Path(description="an anime id", json_schema_extra=_range(0, MAX_ID))]


def _recall(exact_ids: list[int], ann_ids: list[int]) -> float | None:
    return len(set(exact_ids) & set(ann_ids)) / len(exact_ids) if exact_ids else None


def add_routes(app: FastAPI, holder: EngineHolder, settings: ApiSettings) -> None:
    limiter = WriteLimiter(settings.writes_per_minute)

    @app.get("/health", response_model=schemas.Health, responses=_errors(503),
             summary="Engine status (503 with progress while it starts)")
    async def health() -> schemas.Health:
        engine = holder.engine()
        ratings = engine.snapshot.data.ratings
        return schemas.Health(status="ok", users=int(ratings.shape[0]),
                              anime=int(ratings.shape[1]), ratings=int(ratings.nnz),
                              index=str(engine.build_info.get("index", "built")),
                              revision=engine.data_revision)

    @app.get("/recommend", response_model=schemas.Recommendations,
             responses=_errors(404, 422, 503), summary="Recommendations for a known user")
    async def recommend(user_id: UserId, algorithm: Algorithm = None, weight: Weight = None,
                        n: N = None, k: K = None, collaborative: Collaborative = None,
                        diversity: Diversity = None) -> schemas.Recommendations:
        given = _given(algorithm=algorithm, weight=weight, n=n, k=k,
                       collaborative=collaborative, diversity=diversity)
        return await holder.call(
            lambda engine: convert.recommendations(engine.recommend(user_id, **given)))

    @app.post("/recommend", response_model=schemas.Recommendations,
              responses=_errors(413, 422, 503), summary="Recommendations for a what-if list")
    async def recommend_list(body: schemas.RecommendRequest) -> schemas.Recommendations:
        given = _given(algorithm=body.algorithm, weight=body.weight, n=body.n, k=body.k,
                       collaborative=body.collaborative, diversity=body.diversity)
        return await holder.call(lambda engine: convert.recommendations(
            engine.recommend(liked=body.liked, **given)))

    @app.get("/search", response_model=schemas.SearchResults, responses=_errors(422, 503),
             summary="Fuzzy title search (the autocomplete)")
    async def search(
        q: Annotated[str, Query(description="part of a title; typos welcome",
                                json_schema_extra={"maxLength": MAX_QUERY_LENGTH})],
        limit: Annotated[int | None, Query(json_schema_extra=_range(1, requests.MAX_N))] = None,
    ) -> schemas.SearchResults:
        given = _given(limit=limit)
        return await holder.call(lambda engine: convert.search(engine.search(q, **given)))

    @app.get("/neighbors", response_model=schemas.Neighbours, responses=_errors(404, 422, 503),
             summary="A user's most similar users")
    async def neighbors(
        user_id: UserId, k: K = None,
        exact: Annotated[bool, Query(description="exact brute force, compared with the "
                                                 "index (recall)")] = False,
    ) -> schemas.Neighbours:
        given = _given(k=k)

        def work(engine: RecommenderEngine) -> schemas.Neighbours:
            frame = engine.neighbors(user_id, exact=exact, **given)
            recall = None
            if exact:
                ann = engine.neighbors(user_id, exact=False, **given)
                recall = _recall(frame["user_id"].tolist(), ann["user_id"].tolist())
            return convert.neighbours(frame, exact=exact, recall=recall)

        return await holder.call(work)

    @app.get("/anime/{anime_id}", response_model=schemas.Anime, responses=_errors(404, 422, 503),
             summary="One anime of the catalogue")
    async def anime(anime_id: AnimeId) -> schemas.Anime:
        def work(engine: RecommenderEngine) -> schemas.Anime:
            position = requests.anime_position(engine.snapshot, anime_id)
            return convert.anime(engine.anime_frame([position]))

        return await holder.call(work)

    @app.get("/anime/{anime_id}/similar", response_model=schemas.SimilarList,
             responses=_errors(404, 422, 503), summary="Anime most similar to one anime")
    async def similar(
        anime_id: AnimeId,
        model: Annotated[str | None, Query(description="ease (default), mf or content")] = None,
        n: N = None,
    ) -> schemas.SimilarList:
        given = _given(model=model, n=n)

        def work(engine: RecommenderEngine) -> schemas.SimilarList:
            used = model or inspect.signature(engine.similar_anime).parameters["model"].default
            return convert.similar(engine.similar_anime(anime_id, **given), str(used))

        return await holder.call(work)

    async def write_allowed(request: Request,
                            x_api_key: Annotated[str | None, Header()] = None) -> None:
        check_key(settings.api_key, x_api_key)
        if settings.writes_per_minute == 0:
            raise APIKeyError("writes are disabled on this server (API_WRITES_PER_MINUTE is 0)")
        limiter.acquire(request.client.host if request.client else "unknown")

    @app.post("/users", status_code=201, response_model=schemas.NewUser,
              responses=_errors(401, 403, 413, 422, 429, 503),
              dependencies=[Depends(write_allowed)],
              summary="Save a new user (needs X-API-Key)")
    async def add_user(body: schemas.NewUserRequest) -> JSONResponse:
        user_id = await holder.call(lambda engine: engine.add_user(body.liked))
        return JSONResponse({"user_id": int(user_id)}, status_code=201)
