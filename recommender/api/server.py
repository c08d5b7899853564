"""``python -m recommender serve``: uvicorn over :func:`recommender.api.app.create_app`.

Each worker process builds its own engine from the shared database and model
cache. With several workers the engine is first prepared once in a child
process (ingest of an empty database, fitting and saving the models), so the
workers only load the cache instead of all fitting, and ingesting, at once.
"""

from __future__ import annotations

import logging
import multiprocessing

_log = logging.getLogger(__name__)

APP = "recommender.api.app:create_app"


def _prepare() -> None:
    from recommender.errors import RecommenderError
    from recommender.serving.engine import RecommenderEngine

    try:
        RecommenderEngine.from_settings()
    except RecommenderError as exc:  # the workers report it (503) and retry
        _log.warning("could not prepare the engine: %s", exc)


def prepare_once() -> None:
    """Build and save the engine's cache in a child process (its memory goes with it)."""
    child = multiprocessing.get_context("spawn").Process(target=_prepare, name="anirec-prepare")
    child.start()
    child.join()


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, *,
          access_log: bool = True) -> None:
    """Serve the API until interrupted (uvicorn; ``workers`` processes on one port)."""
    import uvicorn

    if workers > 1:
        prepare_once()
    uvicorn.run(APP, factory=True, host=host, port=port, workers=workers,
                access_log=access_log, log_level="info", server_header=False)
