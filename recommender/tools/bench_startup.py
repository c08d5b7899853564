"""Ingest and start-up measured in child processes, so each peak RSS is that step's own.

``ru_maxrss`` from ``wait4`` would not do: Linux keeps the parent's high-water
mark across fork and exec, so a child of a big bench process would report the
bench's own peak. Each child prints its VmHWM at exit instead. A missing
PostgreSQL server is reported as ``"status": "unavailable"``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from recommender.config import EngineParams, params_to_env


def _run_child(args: list[str], env: dict) -> dict:
    """Run ``python -m recommender ARGS`` in a child; its wall seconds and peak RSS."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", _REPORT_PEAK + _RUN_CLI, *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = child.communicate()
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        return {"status": "failed", "why": (err or out).strip().splitlines()[-1:]}
    return {"status": "ok", "seconds": round(seconds, 3),
            "peak_rss_mib": _child_peak_mib(err), "stdout": out.strip()}


#: Child-process prologue: print the process's own peak RSS (VmHWM) at exit.
#: ``ru_maxrss`` from wait4 would not do: Linux keeps the parent's high-water
#: mark across fork and exec, so a child of a big bench process would report
#: the bench's own peak.
_REPORT_PEAK = (
    "import atexit, sys\n"
    "def _peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write('\\nVMHWM_KIB ' + line.split()[1] + '\\n')\n"
    "atexit.register(_peak)\n")
_RUN_CLI = ("import runpy\n"
            "sys.argv = ['recommender', *sys.argv[1:]]\n"
            "runpy.run_module('recommender', run_name='__main__', alter_sys=True)\n")


def _child_peak_mib(stderr: str) -> float | None:
    """The VmHWM a child printed (see ``_REPORT_PEAK``), in MiB."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("VMHWM_KIB "):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def throwaway_database(backend: str, workdir: Path) -> tuple[str, Callable[[], None]]:
    """A fresh, empty database for ``backend`` and a function that drops it."""
    if backend == "sqlite":
        path = workdir / "bench.db"
        for extra in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
        return f"sqlite:///{path.resolve()}", lambda: None
    import psycopg

    name = f"anirec_tmp_{os.getpid()}"
    server = os.environ.get("ANIREC_BENCH_POSTGRES", "host=127.0.0.1 port=5432 dbname=test")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(
            psycopg.sql.Identifier(name)))
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        user = conn.execute("SELECT current_user").fetchone()[0]

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                psycopg.sql.Identifier(name)))

    return f"postgresql+psycopg://{user}@127.0.0.1:5432/{name}", drop


def bench_ingest(backend: str, anime_csv: Path, rating_csv: Path, workdir: Path) -> dict:
    """Ingest time and peak memory of the CSVs into ``backend`` ("sqlite" or "postgresql").

    Runs ``python -m recommender ingest`` in a child process on a fresh database, so
    the peak RSS is the ingest's own. The SQLite database is kept in ``workdir``
    for :func:`bench_warm_load`; the PostgreSQL one is dropped afterwards.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        url, drop = throwaway_database(backend, workdir)
    except Exception as exc:  # no server: report it, the other figures still count
        return {"status": "unavailable", "why": f"{type(exc).__name__}: {exc}"[:200]}
    env = {**os.environ, "DATABASE_URL": url, "ANIREC_CACHE_DIR": str(workdir / "cache")}
    try:
        out = _run_child(["ingest", "--anime", str(anime_csv), "--ratings", str(rating_csv),
                          "--quiet"], env)
    finally:
        drop()
    if out["status"] == "ok":
        import gzip

        opener = gzip.open if str(rating_csv).endswith(".gz") else open
        with opener(rating_csv, "rb") as handle:  # the bundled file is gzipped
            rows = sum(1 for _ in handle) - 1
        out["rows"] = rows
        out["rows_per_second"] = round(rows / out["seconds"])
        if backend == "sqlite":
            out["database_url"] = url
    return out


def bench_warm_load(params: EngineParams, workdir: Path, database_url: str | None) -> dict:
    """Cold build-and-save, then warm start from the persisted cache, each in a child.

    Uses the SQLite database :func:`bench_ingest` filled. The warm figure
    (``seconds``) is ``from_settings`` in a fresh child: database reads, cache
    load, everything up to a ready engine; the child's imports and its whole
    wall time are reported beside it.
    """
    if database_url is None:
        return {"status": "unavailable", "why": "no ingested database to start from"}
    env = {**os.environ, "DATABASE_URL": database_url,
           "ANIREC_CACHE_DIR": str(workdir / "cache"),
           **params_to_env(params)}
    cold = _run_child(["build-index"], env)
    if cold["status"] != "ok":
        return cold
    # Imports are timed apart: they are the interpreter's fixed cost, paid
    # before any data is touched, and the same at every scale.
    probe = ("import json, time; t = time.perf_counter(); "
             "import recommender.serving.startup; "
             "from recommender import RecommenderEngine; i = time.perf_counter(); "
             "e = RecommenderEngine.from_settings(); "
             "print(json.dumps({'imports': i - t, 'startup': time.perf_counter() - i, "
             "'index': e.build_info['index'], 'matrix': e.build_info.get('matrix', '')}))")
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", _REPORT_PEAK + probe], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = child.communicate()
    wall = time.perf_counter() - started
    if child.returncode != 0:
        return {"status": "failed", "why": err.strip().splitlines()[-1:]}
    warm = json.loads(out.strip().splitlines()[-1])
    return {"status": "ok", "cold_build_seconds": cold["seconds"],
            "cold_peak_rss_mib": cold["peak_rss_mib"], "index": warm["index"],
            "matrix": warm["matrix"], "process_seconds": round(wall, 3),
            "imports_seconds": round(warm["imports"], 3),
            "seconds": round(warm["startup"], 3),
            "peak_rss_mib": _child_peak_mib(err)}
