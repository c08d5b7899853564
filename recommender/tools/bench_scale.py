"""Scale figures beside the engine's own: a plain ``COPY`` reference, two-process memory.

- :func:`bench_pg_copy_reference` times a plain ``COPY ... FROM STDIN (FORMAT csv)``
  of the same ratings CSV into a table with its primary key already in place, on a
  throwaway database of the same server, so the engine's ingest rows/s has a
  reference taken in the same conditions (a loaded machine slows both alike).
- :func:`bench_two_processes` starts two warm processes on one model cache and
  reads ``/proc/PID/smaps_rollup`` of each: the first alone, then both. Pages of
  the memory-mapped cache are shared, so the pair's combined PSS should stay well
  under twice one process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from recommender.config import EngineParams, params_to_env
from recommender.tools.bench_startup import throwaway_database

MIB = 2**20


def bench_pg_copy_reference(rating_csv: Path, workdir: Path) -> dict:
    """Seconds and rows/s of a plain keyed ``COPY`` of ``rating_csv`` into PostgreSQL."""
    if str(rating_csv).endswith(".gz"):
        return {"status": "unavailable", "why": "the reference copies a plain CSV"}
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        url, drop = throwaway_database("postgresql", workdir)
    except Exception as exc:  # no server: report it, the other figures still count
        return {"status": "unavailable", "why": f"{type(exc).__name__}: {exc}"[:200]}
    from recommender.data.database import create_db_engine

    # The data layer's engine, and psycopg's own connection under it for COPY (as the
    # ingest does in recommender/data/pg_bulk.py).
    database = None
    try:
        database = create_db_engine(url)
        with database.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE ratings (user_id integer NOT NULL, anime_id "
                                 "integer NOT NULL, rating smallint NOT NULL, "
                                 "PRIMARY KEY (user_id, anime_id))")
        started = time.perf_counter()
        with database.begin() as conn:
            with conn.connection.driver_connection.cursor() as cur, \
                    open(rating_csv, "rb") as handle:
                with cur.copy("COPY ratings (user_id, anime_id, rating) FROM STDIN "
                              "(FORMAT csv, HEADER true)") as copy:
                    while chunk := handle.read(1 << 20):
                        copy.write(chunk)
                rows = cur.rowcount
        seconds = time.perf_counter() - started  # the commit included, as for the ingest
    except Exception as exc:
        return {"status": "failed", "why": f"{type(exc).__name__}: {exc}"[:200]}
    finally:
        if database is not None:
            database.dispose()
        drop()
    return {"status": "ok", "seconds": round(seconds, 3), "rows": int(rows),
            "rows_per_second": round(rows / seconds),
            "what": "COPY csv into a table with its primary key, no foreign keys"}


def smaps_rollup_mib(pid: int) -> dict:
    """Rss, Pss and private (clean + dirty) MiB of ``pid`` from ``/proc/PID/smaps_rollup``."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            fields[name.strip()] = int(parts[0])
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"rss_mib": round(fields.get("Rss", 0) / 1024, 1),
            "pss_mib": round(fields.get("Pss", 0) / 1024, 1),
            "private_mib": round(private / 1024, 1)}


#: A warm process: load the engine from the cache, say so, then wait to be measured.
_SERVE = ("import sys\n"
          "from recommender import RecommenderEngine\n"
          "e = RecommenderEngine.from_settings()\n"
          "e.recommend(int(e.user_ids()[0]), algorithm='hybrid', n=10)\n"
          "print('ready', e.build_info['index'], flush=True)\n"
          "sys.stdin.readline()\n")


def _start_server(env: dict) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", _SERVE], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    if not line.startswith("ready"):
        err = child.communicate(timeout=60)[1]
        raise RuntimeError((err or line).strip().splitlines()[-1:])
    return child


def bench_two_processes(params: EngineParams, workdir: Path, database_url: str | None) -> dict:
    """Memory of one warm process alone, then of two serving together from one cache."""
    if database_url is None:
        return {"status": "unavailable", "why": "no ingested database to start from"}
    env = {**os.environ, "DATABASE_URL": database_url,
           "ANIREC_CACHE_DIR": str(workdir / "cache"), **params_to_env(params)}
    children: list[subprocess.Popen] = []
    try:
        children.append(_start_server(env))
        alone = smaps_rollup_mib(children[0].pid)
        children.append(_start_server(env))
        both = [smaps_rollup_mib(c.pid) for c in children]
    except Exception as exc:
        return {"status": "failed", "why": str(exc)[:300]}
    finally:
        for child in children:
            child.communicate("\n", timeout=60)
    pss = round(sum(b["pss_mib"] for b in both), 1)
    private = round(sum(b["private_mib"] for b in both), 1)
    return {"status": "ok", "alone": alone, "each": both, "combined_pss_mib": pss,
            "combined_private_mib": private,
            # "Twice one process" is twice the first process's own PSS while alone.
            "combined_pss_over_one": round(pss / alone["pss_mib"], 3) if alone["pss_mib"] else None}
