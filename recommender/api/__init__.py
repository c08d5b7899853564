"""The HTTP API (FastAPI) over the engine: ``python -m recommender serve``.

``app`` builds the application, ``routes`` the endpoints, ``schemas`` their
bodies, ``handlers`` the error mapping, ``guards`` the key, rate limit and body
limit, ``state`` the per-process engine and its thread pool, ``server`` uvicorn.
FastAPI is imported only by this package, so the rest of the package runs without it.
"""
