"""Every error as JSON, ``{"error": {"type": ..., "message": ...}}``, with its status code.

The package's error types map to statuses by class; FastAPI's own validation
errors (a value of the wrong type) are reported in the package's words, as
``InvalidParameterError``. Messages are the errors' one-line texts: the
package never puts a secret or a traceback in them (database URLs are redacted
where the error is made).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from recommender.errors import (
    AdminKeyError,
    APIKeyError,
    DatabaseError,
    EngineStartingError,
    IndexCacheError,
    MissingAPIKeyError,
    QuotaExceededError,
    RecommenderError,
    RequestTooLargeError,
    UnknownAnimeError,
    UnknownUserError,
)

#: Most specific first; any other RecommenderError is bad input (422).
STATUS: tuple[tuple[type[RecommenderError], int], ...] = (
    (UnknownUserError, 404),
    (UnknownAnimeError, 404),
    (MissingAPIKeyError, 401),
    (APIKeyError, 403),
    (AdminKeyError, 403),
    (QuotaExceededError, 429),
    (EngineStartingError, 503),
    (DatabaseError, 503),
    (IndexCacheError, 503),
)

#: Names of HTTP errors Starlette raises itself (unknown path, wrong method...).
_HTTP_TYPES = {404: "NotFoundError", 405: "MethodNotAllowedError",
               413: RequestTooLargeError.__name__}


def status_of(exc: RecommenderError) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 422


def error_response(status: int, kind: str, message: str, *, headers=None,
                   progress: tuple[str, float] | None = None) -> JSONResponse:
    body: dict = {"error": {"type": kind, "message": message}}
    if progress is not None:
        body["progress"] = {"stage": progress[0], "fraction": progress[1]}
    return JSONResponse(body, status_code=status, headers=headers)


async def on_package_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RecommenderError)
    status = status_of(exc)
    headers, progress = None, None
    if status == 503:
        headers = {"Retry-After": "2"}
        holder = getattr(request.app.state, "holder", None)
        if isinstance(exc, EngineStartingError) and holder is not None:
            progress = holder.progress
    elif status == 429:
        headers = {"Retry-After": "60"}
    elif status == 401:
        headers = {"WWW-Authenticate": 'APIKey header="X-API-Key"'}
    return error_response(status, type(exc).__name__, str(exc), headers=headers,
                          progress=progress)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def validation_message(error: dict) -> str:
    """One pydantic error in the package's words: which value, what it must be, what it got."""
    loc = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body", "header")]
    name = ".".join(loc) or "request"
    kind = error.get("type", "")
    given = error.get("input")
    if kind == "missing":
        return f"{name} is required"
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return f"{name} must be a whole number, got {_short(given)}"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"{name} must be a number, got {_short(given)}"
    if kind in ("bool_parsing", "bool_type"):
        return f"{name} must be true or false, got {_short(given)}"
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if kind == "extra_forbidden":
        return f"{name} is not a field of this request"
    return f"{name}: {error.get('msg', 'invalid value')}"


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    message = validation_message(errors[0]) if errors else "invalid request"
    return error_response(422, "InvalidParameterError", message)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # FastAPI's answer to a body it cannot decode
        return error_response(422, "InvalidParameterError", "the request body is not valid JSON")
    message = exc.detail if isinstance(exc.detail, str) else "invalid request"
    return error_response(exc.status_code, _HTTP_TYPES.get(exc.status_code, "HTTPError"),
                          message, headers=getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    app.add_exception_handler(RecommenderError, on_package_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
