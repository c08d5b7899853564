"""One engine per API process: started in the background, then shared by every request.

The server answers from its first second: while the engine is being built or
loaded, requests get 503 with the start-up stage, and ``/health`` stays
responsive because it never waits for the engine. CPU-bound work (every
engine call) runs in one thread pool sized to the cores, so a burst of slow
requests queues there instead of blocking the event loop.

Several API processes (``--workers``) share the database: each request first
appends users other processes added (at most every ``CATCH_UP_SECONDS``), and
a request for a user id above every id this process holds looks again at once,
so a user created through one worker is served by every other one straight away.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from recommender.core.redact import redact_text
from recommender.errors import (
    DatabaseError,
    EngineStartingError,
    RecommenderError,
    UnknownUserError,
)
from recommender.serving.engine import RecommenderEngine

_log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[str, float], None]
Starter = Callable[[Progress], RecommenderEngine]

#: Seconds between look-ups of users other processes added (as the dashboard does).
CATCH_UP_SECONDS = 10.0
#: Seconds before a failed start (e.g. the database was down) is tried again.
RETRY_SECONDS = 5.0


class EngineHolder:
    """The process's engine, its start-up state and the thread pool that calls it."""

    def __init__(self, starter: Starter | None = None, *, threads: int,
                 engine: RecommenderEngine | None = None):
        if starter is None and engine is None:
            raise ValueError("give a starter or an engine")
        self._starter = starter
        self._engine = engine
        self._stage: tuple[str, float] = ("ready", 1.0) if engine else ("waiting", 0.0)
        self._failure: RecommenderError | None = None
        self._failed_at = 0.0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ start-up
    def start(self) -> None:
        """Begin building the engine in a background thread (once; again after a failure)."""
        with self._lock:
            if self._engine is not None or (self._thread is not None and self._thread.is_alive()):
                return
            self._failure = None
            self._stage = ("starting", 0.0)
            self._thread = threading.Thread(target=self._run, name="anirec-api-start",
                                            daemon=True)
            self._thread.start()

    def _report(self, stage: str, fraction: float) -> None:
        self._stage = (str(stage), min(max(float(fraction), 0.0), 1.0))

    def _run(self) -> None:
        assert self._starter is not None
        try:
            engine = self._starter(self._report)
        except RecommenderError as exc:
            failure: RecommenderError = exc
        except Exception as exc:  # noqa: BLE001 - reported as one line, never a traceback
            first = (str(exc).strip().splitlines() or [""])[0]
            failure = EngineStartingError(f"the recommender could not start: "
                                          f"{type(exc).__name__}: {redact_text(first)[:200]}")
        else:
            with self._lock:
                self._engine = engine
                self._stage = ("ready", 1.0)
            return
        _log.warning("the recommender could not start: %s", failure)
        with self._lock:
            self._failure, self._failed_at = failure, time.monotonic()

    @property
    def progress(self) -> tuple[str, float]:
        """``(stage, fraction)`` of the start-up ("ready", 1.0 once done)."""
        return self._stage

    @property
    def ready(self) -> bool:
        return self._engine is not None

    def engine(self) -> RecommenderEngine:
        """The engine; :class:`EngineStartingError` (or the start's own error) until it is ready."""
        engine = self._engine
        if engine is not None:
            return engine
        failure = self._failure
        if failure is not None and time.monotonic() - self._failed_at < RETRY_SECONDS:
            raise type(failure)(str(failure))
        self.start()
        stage, fraction = self._stage
        raise EngineStartingError(f"the recommender is starting ({stage}, {fraction:.0%}); "
                                  "try again in a few seconds")

    # ------------------------------------------------------------------ requests
    async def call(self, work: Callable[[RecommenderEngine], T]) -> T:
        """``work(engine)`` in the pool, after catching up with other processes' users."""
        engine = self.engine()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), _with_catch_up, engine, work)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.threads,
                                                thread_name_prefix="anirec-api",
                                                initializer=_one_blas_thread)
            return self._pool

    def close(self) -> None:
        """Stop the pool's threads (at shutdown; a later request starts a new pool)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _one_blas_thread() -> None:
    """One BLAS / OpenMP thread per pool thread: the pool already has one per core.

    Nested threads thrash: on the busy 2-core machine a request took 70 ms p50
    with OpenBLAS's default two threads and 39 ms with one (the limit is per process).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _quietly(look: Callable[[], T], fallback: T) -> T:
    """``look()`` (a database read), or ``fallback`` when the database cannot be read.

    Serving what is in memory beats failing the request; a write would report it.
    """
    try:
        return look()
    except DatabaseError as exc:
        _log.warning("cannot look for new users: %s", exc)
        return fallback


def _with_catch_up(engine: RecommenderEngine, work: Callable[[RecommenderEngine], T]) -> T:
    if engine.database is not None:  # an in-memory engine has no other writers
        _quietly(lambda: engine.catch_up(min_interval=CATCH_UP_SECONDS), 0)
    try:
        return work(engine)
    except UnknownUserError as exc:
        # Perhaps created through another process a moment ago: look once more (only
        # ids above every id in memory ask the database, so misses stay cheap).
        wanted = exc.user_id
        if wanted is None or not _quietly(lambda: engine.look_for_user(wanted), False):
            raise
    return work(engine)
