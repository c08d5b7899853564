"""Per-stage timings and memory, kept in process for the dashboard to plot.

``timed`` is cheap and wraps every request stage. ``Profiler.stage(memory=True)``
runs tracemalloc, which slows the traced code noticeably, so only build stages
(load, matrix, the model fits) use it, never the per-request path.
"""

from __future__ import annotations

import functools
import threading
import time
import tracemalloc
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class StageRecord:
    """One measured stage: wall seconds and, when traced, peak Python-heap bytes."""

    stage: str
    seconds: float
    peak_bytes: int | None
    started_at: float  # time.time() at the start


class Profiler:
    """A bounded, thread-safe log of :class:`StageRecord` (newest last)."""

    def __init__(self, maxlen: int = 5000):
        self._records: deque[StageRecord] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def record(self, stage: str, seconds: float, peak_bytes: int | None = None,
               started_at: float | None = None) -> None:
        rec = StageRecord(stage, float(seconds), peak_bytes,
                          time.time() - seconds if started_at is None else started_at)
        with self._lock:
            self._records.append(rec)

    def records(self) -> list[StageRecord]:
        with self._lock:
            return list(self._records)

    def frame(self) -> pd.DataFrame:
        """All records as a frame: stage, seconds, ms, peak_bytes, peak_mib, started_at."""
        frame = pd.DataFrame([asdict(r) for r in self.records()],
                             columns=["stage", "seconds", "peak_bytes", "started_at"])
        frame["ms"] = frame["seconds"] * 1000.0
        frame["peak_mib"] = frame["peak_bytes"].astype(float) / 2**20
        return frame

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    @contextmanager
    def stage(self, name: str, *, memory: bool = False):
        """Time a block; with ``memory=True`` also trace its peak Python allocations."""
        tracing = memory and not tracemalloc.is_tracing()
        if tracing:
            tracemalloc.start()
        elif memory:
            tracemalloc.reset_peak()
        start_wall, start = time.time(), time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            peak = None
            if memory:
                peak = tracemalloc.get_traced_memory()[1]
                if tracing:
                    tracemalloc.stop()
            self.record(name, seconds, peak, start_wall)


#: The process-wide profiler the engine writes to and the dashboard reads.
PROFILER = Profiler()


def timed(stage: str, profiler: Profiler | None = None):
    """Decorator: record the wall time of every call under ``stage``."""

    def wrap(func):
        @functools.wraps(func)
        def inner(*args, **kwargs):
            with (profiler or PROFILER).stage(stage):
                return func(*args, **kwargs)

        return inner

    return wrap


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux ``ru_maxrss`` is KiB)."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
