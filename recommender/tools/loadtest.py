"""``python -m recommender loadtest``: the HTTP API under wrk, on loopback, with bounded time.

It prepares a throwaway SQLite database and model cache with the bundled data
(``build-index``), then for each worker count starts ``python -m recommender
serve`` on a free port and drives it with `wrk <https://github.com/wg/wrk>`_
(Debian package ``wrk``) and a generated Lua script, for each mix and
connection count:

- ``recommend``: ``GET /recommend`` for existing users only;
- ``read``: 60% ``GET /recommend``, 20% ``POST /recommend`` (what-if lists),
  20% ``GET /search`` (misspelt titles);
- ``write``: the read mix plus 2% ``POST /users``.

Afterwards every user the ``write`` rows created must be in the database and
be served by every worker (told apart by the ``X-Served-By`` header). The
per-client write limit is lifted for the run: all of wrk's connections come
from one address. A script that prints figures, never a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from recommender.core.paths import ROOT
from recommender.errors import ConfigurationError, RecommenderError

MIXES = {"recommend": (0.0, False), "read": (0.0, True), "write": (0.02, True)}

LUA = r"""
local users = {%(users)s}
local queries = {%(queries)s}
local lists = {%(lists)s}
local key = "%(key)s"
local mix, write_share = "recommend", 0
-- Globals, so that setup() and done() reach them through thread:set / thread:get.
seed = 1
created = ""
local threads = {}
local counter = 1

function setup(thread)
  thread:set("seed", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  mix = args[1] or "recommend"
  write_share = tonumber(args[2] or "0")
  math.randomseed(os.time() * 1000 + seed)
end

local json_headers = {["Content-Type"] = "application/json"}
local write_headers = {["Content-Type"] = "application/json", ["X-API-Key"] = key}

function request()
  local pick = function(t) return t[math.random(#t)] end
  if math.random() < write_share then
    return wrk.format("POST", "/users", write_headers, '{"liked": ' .. pick(lists) .. '}')
  end
  local r = math.random()
  if mix == "recommend" or r < 0.6 then
    return wrk.format("GET", "/recommend?user_id=" .. pick(users) .. "&n=10")
  elseif r < 0.8 then
    return wrk.format("POST", "/recommend", json_headers,
                      '{"liked": ' .. pick(lists) .. ', "n": 10}')
  end
  return wrk.format("GET", "/search?limit=10&q=" .. pick(queries))
end

function response(status, headers, body)
  if status == 201 then
    local id = string.match(body, '"user_id":%%s*(%%d+)')
    if id then created = created .. id .. "," end
  end
end

function done(summary, latency, requests)
  local all = ""
  for _, thread in ipairs(threads) do all = all .. (thread:get("created") or "") end
  local e = summary.errors
  io.write(string.format(
    'LOADTEST {"requests": %%d, "micros": %%d, "p50": %%d, "p95": %%d, "p99": %%d, ' ..
    '"status_errors": %%d, "socket_errors": %%d, "created": "%%s"}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout, all))
end
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=10.0, help="per row")
    parser.add_argument("--connections", default="1,8,32")
    parser.add_argument("--workers", default="1,2", help="server processes, e.g. 1,2")
    parser.add_argument("--mixes", default="recommend,read,write",
                        help="of: " + ", ".join(MIXES))
    parser.add_argument("--seed", type=int, default=0)


def _numbers(text: str, name: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigurationError(f"--{name} must be comma-separated whole numbers") from None
    if not values or min(values) < 1:
        raise ConfigurationError(f"--{name} must list numbers >= 1")
    return values


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _typo(name: str, rng: random.Random) -> str:
    text = name.lower()
    if len(text) > 4:
        i = rng.randrange(1, len(text) - 2)
        text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
    return text[:40]


def write_script(path: Path, url: str, key: str, rng: random.Random) -> None:
    """The Lua script, with user ids, what-if lists and queries drawn from the database."""
    from recommender.data import database as db

    database = db.create_db_engine(url)
    try:
        users = db.load_users(database)["user_id"].tolist()
        anime = db.load_anime(database).sort_values("members", ascending=False)
    finally:
        database.dispose()
    popular = anime["anime_id"].head(500).tolist()
    lists = []
    for _ in range(100):
        chosen = rng.sample(popular, 5)
        lists.append(json.dumps({str(a): rng.choice([None, 7, 8, 9, 10]) for a in chosen}))
    names = anime["name"].head(300).tolist()
    queries = [quote(_typo(n, rng)) for n in rng.sample(names, 100)]
    lua = LUA % {"users": ",".join(str(u) for u in rng.sample(users, min(500, len(users)))),
                 "queries": ",".join(json.dumps(q) for q in queries),
                 "lists": ",".join(f"[==[{x}]==]" for x in lists), "key": key}
    path.write_text(lua)


class Server:
    """``python -m recommender serve`` in a child process (ended by its id)."""

    def __init__(self, env: dict, workers: int, log: Path, *, access_log: bool = False):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = log.open("w")
        command = [sys.executable, "-m", "recommender", "serve", "--port", str(self.port),
                   "--workers", str(workers)]
        self.process = subprocess.Popen(command + ([] if access_log else ["--no-access-log"]),
                                        cwd=ROOT, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT)

    def log_text(self) -> str:
        """What the server printed so far."""
        self._log.flush()
        return self.log_path.read_text()

    def wait_ready(self, workers: int, timeout: float = 180.0) -> None:
        """Until every worker (told apart by ``X-Served-By``) answers /health with 200."""
        import httpx

        ready: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RecommenderError(f"the server exited with {self.process.returncode}")
            try:
                # A new connection each time, so the kernel may hand it to any worker.
                response = httpx.get(self.base + "/health", timeout=2,
                                     headers={"Connection": "close"})
                if response.status_code == 200:
                    ready.add(response.headers.get("x-served-by", ""))
                    if len(ready) >= workers:
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RecommenderError(f"the server was not ready within {timeout:.0f} s")

    def stop(self) -> str:
        """End the server; returns everything it printed."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        return self.log_path.read_text()


def run_wrk(wrk: str, script: Path, base: str, connections: int, seconds: float,
            mix: str) -> dict:
    share, _ = MIXES[mix]
    threads = min(connections, 2)
    out = subprocess.run([wrk, "-t", str(threads), "-c", str(connections), "-d",
                          f"{seconds:g}s", "--timeout", "10s", "-s", str(script), base,
                          "--", mix, str(share)], capture_output=True, text=True,
                         timeout=seconds + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith("LOADTEST ")), None)
    if line is None:
        raise RecommenderError(f"wrk gave no figures: {(out.stderr or out.stdout)[-300:]}")
    result = json.loads(line[len("LOADTEST "):])
    result["created"] = [int(x) for x in result["created"].split(",") if x]
    return result


def check_created(base: str, url: str, created: list[int], workers: int) -> dict:
    """How many created users the database has, and how many every worker serves."""
    import httpx
    import sqlalchemy as sa

    from recommender.data import database as db

    database = db.create_db_engine(url)
    try:
        with database.connect() as conn:
            found = set()
            for start in range(0, len(created), 500):
                chunk = created[start:start + 500]
                found |= set(conn.execute(sa.select(db.User.user_id).where(
                    db.User.user_id.in_(chunk))).scalars())
    finally:
        database.dispose()
    served = 0
    for user_id in created:
        seen: set[str] = set()
        for _attempt in range(60):
            # A new connection each time, so the kernel may hand it to any worker.
            r = httpx.get(f"{base}/recommend", params={"user_id": user_id, "n": 1,
                                                       "algorithm": "popularity"},
                          headers={"Connection": "close"}, timeout=10)
            if r.status_code == 200:
                seen.add(r.headers.get("x-served-by", ""))
            if len(seen) >= workers:
                served += 1
                break
    return {"created": len(created), "in_database": len(found), "served_by_all": served}


def run_loadtest(args: argparse.Namespace) -> int:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise ConfigurationError("wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)")
    connections = _numbers(args.connections, "connections")
    worker_counts = _numbers(args.workers, "workers")
    mixes = [m.strip() for m in args.mixes.split(",") if m.strip()]
    if not mixes or set(mixes) - set(MIXES):
        raise ConfigurationError(f"--mixes must be of {', '.join(MIXES)}")
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="anirec-load-"))
    url = f"sqlite:///{tmp / 'load.db'}"
    key = secrets.token_urlsafe(24)
    env = {**os.environ, "DATABASE_URL": url, "ANIREC_CACHE_DIR": str(tmp / "cache"),
           "API_KEY": key, "API_WRITES_PER_MINUTE": "1000000"}
    try:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "recommender", "build-index"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        print(f"prepared the bundled data in a temp SQLite database in "
              f"{time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.2f}",
              file=sys.stderr)
        script = tmp / "mix.lua"
        write_script(script, url, key, rng)
        rows, checks = [], []
        for workers in worker_counts:
            server = Server(env, workers, tmp / f"server-{workers}.log")
            try:
                server.wait_ready(workers)
                created: list[int] = []
                for mix in mixes:
                    for c in connections:
                        result = run_wrk(wrk, script, server.base, c, args.seconds, mix)
                        created += result["created"]
                        rows.append((workers, mix, c, result))
                        print(_row(workers, mix, c, result), file=sys.stderr)
                if created:
                    checks.append((workers, check_created(server.base, url, created, workers)))
            finally:
                server.stop()
        print(_table(rows))
        for workers, check in checks:
            print(f"\nworkers={workers}: created {check['created']} users; "
                  f"{check['in_database']} in the database; {check['served_by_all']} served by "
                  f"every worker")
        print(f"\nload average after the run: {os.getloadavg()[0]:.2f} "
              f"({os.cpu_count()} cores; wrk runs on the same machine)")
        lost = any(c["in_database"] != c["created"] or c["served_by_all"] != c["created"]
                   for _, c in checks)
        errors = sum(r["status_errors"] + r["socket_errors"] for *_, r in rows)
        return 1 if lost or errors else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _row(workers: int, mix: str, c: int, r: dict) -> str:
    seconds = r["micros"] / 1e6
    return (f"| {workers} | {mix} | {c} | {r['requests'] / seconds:,.0f} | {r['p50'] / 1000:.1f} "
            f"| {r['p95'] / 1000:.1f} | {r['p99'] / 1000:.1f} | "
            f"{r['status_errors'] + r['socket_errors']} | {len(r['created'])} |")


def _table(rows: list) -> str:
    head = ("| workers | mix | connections | requests/s | p50 ms | p95 ms | p99 ms | errors "
            "| users created |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    return "\n".join([head, *(_row(*row) for row in rows)])
