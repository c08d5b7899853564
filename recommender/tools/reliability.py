"""Checks that memory, index and database agree, and a bounded concurrency stress run.

:func:`verify_consistency` is the invariant every reliability test asserts: each
user in the database is in the engine, with exactly the database's ratings, and
in the hnswlib index unless their vector is zero (such users have no cosine and
are left out of the index on purpose). :func:`run_stress` drives one shared engine
from many threads (queries beside ``add_user``) and returns the figures.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from recommender.data import database as db
from recommender.models.ann_index import usable_rows
from recommender.serving.engine import RecommenderEngine


def verify_consistency(engine: RecommenderEngine) -> list[str]:
    """Problems found between the database, the engine's matrix and its index ([] = none).

    Compares user ids, every (user, anime, rating) of the matrix with the
    database rows, and the index labels with the users whose vector is non-zero.
    """
    problems: list[str] = []
    database = engine.users.database
    db_users = db.load_users(database)["user_id"].to_numpy(np.int64)
    ratings = db.load_ratings(database)
    data = engine.snapshot.data
    mem_users = engine.user_ids()
    # Users without any rating never enter the matrix (nothing to learn from).
    rated = np.unique(ratings["user_id"].to_numpy(np.int64))
    missing = np.setdiff1d(rated, mem_users)
    extra = np.setdiff1d(mem_users, db_users)
    if len(missing):
        problems.append(f"{len(missing)} database users are not in memory, e.g. "
                        f"{missing[:5].tolist()}")
    if len(extra):
        problems.append(f"{len(extra)} users in memory are not in the database, e.g. "
                        f"{extra[:5].tolist()}")
    matrix = data.ratings.tocoo()
    mem = np.rec.fromarrays([mem_users[matrix.row], data.items.ids[matrix.col],
                             matrix.data.astype(np.int64)])
    keep = np.isin(ratings["user_id"].to_numpy(np.int64), mem_users)
    want = np.rec.fromarrays([ratings["user_id"].to_numpy(np.int64)[keep],
                              ratings["anime_id"].to_numpy(np.int64)[keep],
                              ratings["rating"].to_numpy(np.int64)[keep]])
    if len(mem) != len(want) or not np.array_equal(np.sort(mem), np.sort(want)):
        problems.append(f"matrix rows differ from the database: {len(mem)} ratings in "
                        f"memory, {len(want)} in the database for the same users")
    snapshot = engine.snapshot
    rows = snapshot.rows
    if (rows.similarity.shape[0] != len(mem_users) or rows.vectors.shape[0] != len(mem_users)
            or data.ratings.shape[0] != len(mem_users)):
        problems.append(f"{len(mem_users)} user ids but {rows.similarity.shape[0]} similarity "
                        f"rows, {rows.vectors.shape[0]} vectors and {data.ratings.shape[0]} "
                        "matrix rows")
    labels = np.unique(engine.knn.index_.labels())
    labels = labels[labels < snapshot.n_users]
    expected = np.flatnonzero(usable_rows(rows.vectors))
    lost = np.setdiff1d(expected, labels)
    if len(lost):
        problems.append(f"{len(lost)} users with a non-zero vector are not in the index, "
                        f"e.g. {mem_users[lost[:5]].tolist()}")
    return problems


# --------------------------------------------------------------------------- stress
@dataclass
class StressReport:
    """What one :func:`run_stress` did (the figures) and what went wrong (nothing, ideally)."""

    threads: int
    writer_threads: int
    seconds: float
    queries: int = 0
    users_added: int = 0
    query_counts: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    added: list = field(default_factory=list)  # (user_id, liked) pairs

    @property
    def queries_per_second(self) -> float:
        return self.queries / self.seconds if self.seconds else 0.0

    @property
    def users_per_second(self) -> float:
        return self.users_added / self.seconds if self.seconds else 0.0

    def figures(self) -> dict:
        """The numbers worth printing (no per-user detail)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("added", "errors")}
        out.update(errors=len(self.errors), queries_per_second=round(self.queries_per_second, 1),
                   users_added_per_second=round(self.users_per_second, 2))
        out["seconds"] = round(self.seconds, 2)
        return out


def varied_list(rng: random.Random, anime_ids: np.ndarray, size: tuple[int, int] = (6, 12)
                ) -> dict[int, int]:
    """A random list of anime with ratings spread over 1..10, so its vector is not zero."""
    n = rng.randint(*size)
    picked = rng.sample(list(map(int, anime_ids)), min(n, len(anime_ids)))
    ratings = [rng.randint(1, 10) for _ in picked]
    ratings[0], ratings[-1] = 10, 2  # never all equal: a constant list centres to zero
    return dict(zip(picked, ratings))


def run_stress(engine: RecommenderEngine, seconds: float = 30.0, threads: int = 8,
               writer_threads: int | None = None, random_state: int = 0) -> StressReport:
    """Query ``engine`` from many threads while others add users, for ``seconds``.

    ``writer_threads`` (default a quarter of ``threads``, at least 1) call
    ``add_user`` with varied lists; the rest call ``recommend`` (known and
    what-if users, several algorithms), ANN and exact ``neighbors`` of users and
    of what-if lists, and ``search``. Every
    exception is recorded in the report, never raised.
    """
    writers = max(1, threads // 4) if writer_threads is None else writer_threads
    readers = max(1, threads - writers)
    report = StressReport(threads=readers + writers, writer_threads=writers, seconds=0.0)
    popular = engine.anime.sort_values("members", ascending=False)["anime_id"].to_numpy()[:300]
    names = engine.anime["name"].astype(str).to_numpy()
    algorithms = [a for a in ("hybrid", "user-user", "content", "ease", "mf", "popularity")
                  if a in engine.algorithms]
    lock = threading.Lock()
    stop = threading.Event()

    def record(kind: str, exc: BaseException | None = None) -> None:
        with lock:
            if exc is not None:
                report.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            else:
                report.query_counts[kind] = report.query_counts.get(kind, 0) + 1

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            op = rng.choice(("recommend", "recommend-whatif", "neighbours", "neighbours-exact",
                             "neighbours-whatif", "search"))
            try:
                ids = engine.user_ids()
                user = int(ids[rng.randrange(len(ids))])
                if op == "recommend":
                    engine.recommend(user, algorithm=rng.choice(algorithms), n=10)
                elif op == "recommend-whatif":
                    engine.recommend(liked=varied_list(rng, popular, (2, 8)),
                                     algorithm=rng.choice(algorithms), n=10)
                elif op in ("neighbours", "neighbours-exact"):
                    engine.neighbors(user, k=rng.choice((5, 20)), exact=op.endswith("exact"))
                elif op == "neighbours-whatif":
                    engine.neighbors(liked=varied_list(rng, popular, (2, 8)), k=10,
                                     exact=rng.random() < 0.5)
                else:
                    name = names[rng.randrange(len(names))]
                    start = rng.randrange(max(1, len(name) - 4))
                    engine.search(name[start:start + rng.randint(3, 12)], limit=10)
                record(op)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                record(op, exc)

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            liked = varied_list(rng, popular)
            try:
                user_id = engine.add_user(liked)
            except Exception as exc:  # noqa: BLE001
                record("add_user", exc)
                continue
            with lock:
                report.added.append((user_id, liked))

    workers = ([threading.Thread(target=reader, args=(random_state * 1000 + i,), daemon=True)
                for i in range(readers)]
               + [threading.Thread(target=writer, args=(random_state * 1000 + 500 + i,),
                                   daemon=True) for i in range(writers)])
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    stop.wait(seconds)
    stop.set()
    for worker in workers:
        worker.join(timeout=120)
    report.seconds = time.perf_counter() - started
    if any(worker.is_alive() for worker in workers):
        report.errors.append("a worker thread did not stop within 120 s")
    report.queries = sum(report.query_counts.values())
    report.users_added = len(report.added)
    return report


def find_added_users(engine: RecommenderEngine, added: list, k: int = 10) -> list[int]:
    """Added users that are NOT among the ``k`` neighbours of an identical what-if user."""
    missing = []
    for user_id, liked in added:
        found = engine.neighbors(liked=liked, k=k)["user_id"].to_numpy()
        if user_id not in found:
            missing.append(int(user_id))
    return missing
