"""The one place where the service's errors become HTTP answers: a status by kind of error, and a JSON
body with a `detail` that names what is wrong. Routers and the guard raise or hand over service errors;
they never choose an error status themselves."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from orchestrator.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    Misdirected,
    NotFound,
    ServiceError,
    Throttled,
    TooLarge,
    Unauthorized,
    Unavailable,
    Upstream,
)
from orchestrator.forge.errors import ForgeError, ForgeUnavailable, RateLimited
from orchestrator.forge.github import GitHubClient
from orchestrator.models import ErrorBody

STATUS: dict[type[ServiceError], int] = {
    ServiceError: 400,
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    TooLarge: 413,
    Misdirected: 421,
    Invalid: 422,
    Throttled: 429,
    Upstream: 502,
    Unavailable: 503,
}


def status_of(exc: ServiceError) -> int:
    """The status of the most specific kind `exc` is of."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    raise AssertionError("every ServiceError has a kind")


def _described(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or wrong API token",
    403: "Refused by GitHub",
    404: "Not found",
    409: "Conflict with the current state",
    410: "Authenticated clone URLs and ensure-remote were removed",
    413: "Request body over API_MAX_BODY_BYTES",
    422: "Invalid request: the detail names the field",
    429: "Past SPAWN_RATE_PER_MINUTE: retry after Retry-After seconds",
    502: "GitHub answered with an unexpected status",
    503: "Unavailable for now: retry later",
}
# The error answers each group of routes documents in the OpenAPI schema.
ERROR_RESPONSES = _described(400, 401, 404, 409, 413, 422, 503)
RATE_LIMITED = _described(429)
GITHUB_RESPONSES = {**ERROR_RESPONSES, **_described(403, 410, 502)}
METRICS_RESPONSES = _described(401, 503)


def _headers(exc: ServiceError) -> dict[str, str]:
    headers = {}
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, Unauthorized) and exc.challenge:
        headers["WWW-Authenticate"] = exc.challenge
    return headers


def _body(request: Request, exc: ServiceError) -> dict[str, Any]:
    if not isinstance(exc, ForgeError):
        return {"detail": exc.detail}
    client: GitHubClient | None = getattr(request.app.state, "github", None)
    body: dict[str, Any] = {"detail": client.redact(exc.detail) if client is not None else exc.detail}
    if isinstance(exc, ForgeUnavailable):
        body["retry_after"] = exc.retry_after
    if isinstance(exc, RateLimited):
        body["retry_at"] = exc.retry_at.isoformat()
    return body


def answer(request: Request, exc: ServiceError) -> JSONResponse:
    return JSONResponse(_body(request, exc), status_code=status_of(exc), headers=_headers(exc))


async def send_refusal(send: Send, exc: ServiceError) -> None:
    """The answer to `exc` straight on the ASGI channel, for the guard that runs before the app."""
    body = json.dumps({"detail": exc.detail}).encode()
    extra = [(name.lower().encode(), value.encode()) for name, value in _headers(exc).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status_of(exc),
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"x-content-type-options", b"nosniff"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_detail(exc: RequestValidationError) -> str:
    messages = []
    for error in exc.errors()[:5]:
        messages.append(f"{_location(tuple(error.get('loc', ())))}: {error.get('msg', 'invalid')}")
    return "; ".join(messages)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=STATUS[Invalid])

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return answer(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
