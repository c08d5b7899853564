"""New users: saved to the database, then published to memory, as one operation.

:class:`UserStore` owns the database side: user ids come from
``max(user_id) + 1`` under a lock that spans processes (``BEGIN IMMEDIATE`` on
SQLite, a transaction-scoped advisory lock on PostgreSQL), so ids are
committed in increasing order and every process can append them in that
order. The rows are committed first, then handed to the engine's
``publish_users``; if publishing fails, a compensating transaction deletes
them, so neither is kept. :meth:`UserStore.catch_up` appends users other
processes added.

:func:`grown` is the memory side: a new snapshot with the users of a ratings
frame appended, the old one untouched.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
import pandas as pd
import sqlalchemy as sa

from recommender.core.matrix import IdIndex, build_rating_matrix
from recommender.core.profiling import PROFILER
from recommender.core.types import Snapshot
from recommender.data import database as db
from recommender.errors import InvalidParameterError, RecommenderError
from recommender.models.user_knn import UserKNN

_log = logging.getLogger(__name__)


def grown(snapshot: Snapshot, knn: UserKNN, frame: pd.DataFrame) -> Snapshot:
    """``snapshot`` with the users in ``frame`` (ratings) appended; unchanged when empty.

    Their ids must all be above the snapshot's largest; ratings of anime the
    catalogue lacks are left out.
    """
    if frame.empty:
        return snapshot
    data = snapshot.data
    users = IdIndex.from_ids(frame["user_id"].to_numpy(np.int64))
    known = data.users.ids
    if len(known) and users.ids[0] <= known[-1]:
        raise InvalidParameterError(
            f"user {int(users.ids[0])} is not above the largest known user {int(known[-1])}")
    items = data.items.numbers(frame["anime_id"].to_numpy(np.int64))
    keep = items >= 0
    rows = build_rating_matrix(users.numbers(frame["user_id"].to_numpy(np.int64))[keep],
                               items[keep], frame["rating"].to_numpy(np.float32)[keep],
                               (len(users), len(data.items)))
    return knn.grow(snapshot, users.ids, rows)


class UserTarget(Protocol):
    """What a :class:`UserStore` publishes to (the engine)."""

    def user_ids(self) -> np.ndarray:
        ...

    def publish_users(self, frame: pd.DataFrame) -> int:
        ...


class UserStore:
    """The database side of new users (see the module docstring). Thread-safe."""

    def __init__(self, database: sa.Engine):
        self.database = database
        self._lock = threading.Lock()
        self._caught_up_at: float | None = None

    def _error(self, action: str, exc: BaseException):
        return db.database_error(self.database.url.render_as_string(hide_password=False),
                                 action, exc)

    def add(self, target: UserTarget, ratings: pd.DataFrame, *, source: str = "app") -> int:
        """Save one user with ``ratings`` (``anime_id``, ``rating``) and publish; returns the id."""
        if source not in db.USER_SOURCES:
            raise InvalidParameterError(f"source must be one of {', '.join(db.USER_SOURCES)}")
        with self._lock:
            known = target.user_ids()
            mem_max = int(known[-1]) if len(known) else 0
            try:
                with PROFILER.stage("add user: database"), \
                        db.write_transaction(self.database) as conn:
                    db.lock_user_ids(conn)
                    # Users other processes committed since we last looked: they must be
                    # appended before ours, since rows are kept in id order.
                    others = db.ratings_after(conn, mem_max)
                    user_id = max(db.max_user_id(conn) + 1, mem_max + 1, db.APP_USER_ID_START)
                    conn.execute(sa.insert(db.User).values(
                        user_id=user_id, source=source, created_at=datetime.now(UTC)))
                    conn.execute(sa.insert(db.Rating), [
                        {"user_id": user_id, "anime_id": int(a), "rating": int(r)}
                        for a, r in zip(ratings["anime_id"], ratings["rating"])])
            except db.DRIVER_ERRORS as exc:
                # Nothing reached memory yet, so the engine is as it was. If the
                # connection died during COMMIT the row may exist after all; the
                # database is the truth and catch_up (or the next start) appends it.
                raise self._error("the new user was not saved", exc) from None
            frame = pd.concat([others, ratings.assign(user_id=user_id)[
                ["user_id", "anime_id", "rating"]]], ignore_index=True)
            try:
                with PROFILER.stage("add user: index"):
                    target.publish_users(frame)
            except BaseException:
                try:
                    self._delete(user_id)
                except (*db.DRIVER_ERRORS, RecommenderError) as exc:  # the first error matters
                    _log.warning("could not delete user %d after a failed index add (%s); "
                                 "it is appended on the next catch-up", user_id, exc)
                if len(others):
                    self._publish_quietly(target, others)
                raise
        return user_id

    def _publish_quietly(self, target: UserTarget, frame: pd.DataFrame) -> None:
        try:
            target.publish_users(frame)
        except Exception as exc:  # the next catch_up retries
            _log.warning("could not append users committed by another process: %s", exc)

    def _delete(self, user_id: int) -> None:
        """The compensating transaction: remove a user whose publishing failed."""
        with db.write_transaction(self.database) as conn:
            conn.execute(sa.delete(db.Rating).where(db.Rating.user_id == user_id))
            conn.execute(sa.delete(db.User).where(db.User.user_id == user_id))
            # Another process may already have cached this user.
            db.bump_revision(conn)

    def catch_up(self, target: UserTarget, *, min_interval: float = 0.0) -> int:
        """Publish users the database has above the largest id in memory; returns how many.

        With ``min_interval`` > 0 the database is asked at most once per that many
        seconds, so callers on every page view see other processes' new users
        within that delay without a query per request.
        """
        now = time.monotonic()
        last = self._caught_up_at
        if min_interval > 0 and last is not None and now - last < min_interval:
            return 0
        self._caught_up_at = now
        with self._lock:
            known = target.user_ids()
            mem_max = int(known[-1]) if len(known) else 0
            try:
                with self.database.connect() as conn:
                    frame = db.ratings_after(conn, mem_max)
            except db.DRIVER_ERRORS as exc:
                raise self._error("cannot read new users", exc) from None
            return target.publish_users(frame)

    def look_for(self, target: UserTarget, user_id: int | None) -> bool:
        """Whether ``user_id`` is in ``target`` once users above its largest id are appended.

        Ids are committed in increasing order (see the module docstring), so only
        an id above every id in memory can belong to a user another process created
        since the last :meth:`catch_up`; any other id is answered without a query,
        however often it is asked. :class:`DatabaseError` when the database cannot
        be read.
        """
        known = target.user_ids()
        if user_id is None or (len(known) and user_id <= known[-1]):
            return bool(user_id is not None and np.isin(user_id, known))
        self.catch_up(target)
        return bool(np.isin(user_id, target.user_ids()))

    def delete_app_users(self) -> int:
        """Delete every user created in the app (``source = "app"``) and their ratings.

        One transaction, under the same locks as :meth:`add`, so no new user is
        half-written meanwhile. The engine that published them must be replaced
        afterwards (its memory still holds them).
        """
        try:
            with self._lock, db.write_transaction(self.database) as conn:
                db.lock_user_ids(conn)
                app_users = sa.select(db.User.user_id).where(db.User.source == "app")
                conn.execute(sa.delete(db.Rating).where(db.Rating.user_id.in_(app_users)))
                deleted = conn.execute(sa.delete(db.User).where(db.User.source == "app")).rowcount
                db.bump_revision(conn)
        except db.DRIVER_ERRORS as exc:
            raise self._error("app users were not deleted", exc) from None
        _log.info("deleted %d app-created users", deleted)
        return int(deleted)
