"""The FastAPI application over one engine: ``create_app()`` (a factory, for uvicorn workers).

``create_app()`` with no arguments reads everything from the environment and
``.env`` (``DATABASE_URL``, ``ANIREC_*``, ``API_KEY``, ``CORS_ORIGINS``...) and
starts the engine in the background, as the dashboard does. Tests pass a ready
``engine``, or a ``starter`` to control start-up.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from recommender.api import handlers
from recommender.api.guards import BodyLimit, Guard
from recommender.api.routes import add_routes
from recommender.api.settings import ApiSettings, load_api_settings
from recommender.api.state import EngineHolder, Progress, Starter
from recommender.config import Settings, load_settings
from recommender.serving.engine import RecommenderEngine

DESCRIPTION = """Recommendations, neighbours, similar anime and fuzzy title search over the
hybrid anime recommender. Errors are `{"error": {"type", "message"}}`. Creating users
needs the `X-API-Key` header (the server's `API_KEY`)."""


def _starter(settings: Settings | None) -> Starter:
    def start(progress: Progress) -> RecommenderEngine:
        return RecommenderEngine.from_settings(settings or load_settings(), progress=progress)

    return start


def create_app(settings: Settings | None = None, *, api_settings: ApiSettings | None = None,
               engine: RecommenderEngine | None = None,
               starter: Starter | None = None) -> FastAPI:
    """The API over ``engine``, or over the one ``starter`` makes (default: from ``settings``)."""
    api_settings = api_settings or load_api_settings()
    holder = EngineHolder(None if engine is not None else (starter or _starter(settings)),
                          engine=engine, threads=api_settings.threads)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        holder.start()
        yield
        holder.close()

    app = FastAPI(title="Anime recommender", version="1", description=DESCRIPTION,
                  lifespan=lifespan)
    app.state.holder = holder
    app.state.api_settings = api_settings
    handlers.install(app)
    add_routes(app, holder, api_settings)
    # The last added is the outermost: CORS headers go on every answer, errors included.
    app.add_middleware(BodyLimit, max_bytes=api_settings.max_body_bytes)
    app.add_middleware(Guard)
    if api_settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(api_settings.cors_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "X-API-Key"], max_age=600)
    return app
