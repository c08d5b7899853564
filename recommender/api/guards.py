"""What every request passes before the engine: the key, the write rate, the body size.

Middlewares are plain ASGI (no buffering of bodies): :class:`BodyLimit` refuses
a body over the limit from its ``Content-Length`` or, for a chunked upload, as
soon as the bytes read pass it; :class:`Guard` turns an unexpected exception
into a 500 with one logged line (Starlette's own handler would log the
traceback) and names the serving process in ``X-Served-By`` (a random token,
not its pid), so a client can tell workers apart.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import time
from collections import deque

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recommender.core.redact import redact_text
from recommender.errors import (
    APIKeyError,
    MissingAPIKeyError,
    QuotaExceededError,
    RequestTooLargeError,
)

_log = logging.getLogger(__name__)

#: This process's name in the ``X-Served-By`` header.
WORKER_TOKEN = secrets.token_hex(4)


def check_key(expected: str | None, given: str | None) -> None:
    """Pass when ``given`` equals the configured key (constant-time); else the key errors."""
    if not expected:
        raise APIKeyError("writes are disabled on this server (it has no API_KEY set)")
    if not given:
        raise MissingAPIKeyError("this request needs the X-API-Key header")
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                               expected.encode("utf-8", "surrogateescape")):
        raise APIKeyError("the X-API-Key header does not match this server's API_KEY")


class WriteLimiter:
    """At most ``per_minute`` writes per client in any 60-second window (thread-safe)."""

    WINDOW = 60.0
    #: Clients tracked before idle ones are forgotten (bounds the memory).
    MAX_CLIENTS = 10_000

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, client: str) -> None:
        """Count one write of ``client``; :class:`QuotaExceededError` when over the limit."""
        now = time.monotonic()
        with self._lock:
            if len(self._hits) >= self.MAX_CLIENTS:
                self._forget_idle(now)
            hits = self._hits.setdefault(client, deque())
            while hits and now - hits[0] >= self.WINDOW:
                hits.popleft()
            if len(hits) >= self.per_minute:
                wait = max(1, int(self.WINDOW - (now - hits[0])) + 1)
                raise QuotaExceededError(f"at most {self.per_minute} new users per minute from "
                                         f"one client; try again in {wait} s")
            hits.append(now)

    def _forget_idle(self, now: float) -> None:
        for client in [c for c, h in self._hits.items() if not h or now - h[-1] >= self.WINDOW]:
            del self._hits[client]


def _error_body(kind: str, message: str) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message}}).encode()


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a request body over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.strip().isdigit() or int(value) > self.max_bytes:
                    await _send_json(send, 413, _error_body(RequestTooLargeError.__name__,
                                                            self._message()))
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI passes an HTTPException from reading the body through as it is.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)


class Guard:
    """The last line of defence (500 without a traceback) and the ``X-Served-By`` header."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tagged(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"x-served-by", WORKER_TOKEN.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        except Exception as exc:  # noqa: BLE001 - one line in the log, none to the client
            first = (str(exc).strip().splitlines() or [""])[0]
            _log.error("unexpected %s on %s %s: %s", type(exc).__name__, scope.get("method"),
                       scope.get("path"), redact_text(first)[:300])
            if not started:
                await _send_json(tagged, 500, _error_body(
                    "InternalError", "the server failed to answer this request"))
