"""Per-session limits, so that one browser page cannot flood the shared database.

The dashboard keeps one :class:`SessionQuota` in each browser session's state and
asks it before every ``engine.add_user``::

    quota = st.session_state.setdefault("user_quota", SessionQuota(MAX_USERS_PER_SESSION))
    with quota.reserve():
        user_id = engine.add_user(liked)

A reload starts a new session (and a new quota), so this bounds what one page
can do, not what a determined client can; the threat model in the README says so.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from recommender.errors import InvalidParameterError, QuotaExceededError

#: New users one browser session may create.
MAX_USERS_PER_SESSION = 5


class SessionQuota:
    """A thread-safe counter of how many users a session has created, up to ``max_users``.

    Streamlit runs one script thread per session, but a double click can start a
    rerun while the previous one still runs, so slots are taken under a lock.
    """

    def __init__(self, max_users: int = MAX_USERS_PER_SESSION):
        if isinstance(max_users, bool) or not isinstance(max_users, int) or max_users < 0:
            raise InvalidParameterError(f"max_users must be a whole number >= 0, got "
                                        f"{max_users!r}")
        self.max_users = max_users
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Slots taken so far (including any reservation still in progress)."""
        return self._used

    @property
    def remaining(self) -> int:
        """Users this session may still create."""
        return self.max_users - self._used

    def try_acquire(self) -> bool:
        """Take one slot; False (and nothing taken) when the quota is used up."""
        with self._lock:
            if self._used >= self.max_users:
                return False
            self._used += 1
            return True

    def acquire(self) -> None:
        """Take one slot or raise :class:`QuotaExceededError`."""
        if not self.try_acquire():
            raise QuotaExceededError(
                f"this session has already created {self.max_users} users, the most allowed")

    def release(self) -> None:
        """Give one slot back (the user it was taken for was not created)."""
        with self._lock:
            if self._used > 0:
                self._used -= 1

    @contextmanager
    def reserve(self) -> Iterator[None]:
        """Hold a slot for the body; it is given back if the body raises."""
        self.acquire()
        try:
            yield
        except BaseException:
            self.release()
            raise

    def __repr__(self) -> str:
        return f"SessionQuota(used={self._used}, max_users={self.max_users})"
