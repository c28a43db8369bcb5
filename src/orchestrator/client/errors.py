"""One exception hierarchy for everything the client can meet: the server's refusals and the network."""

from __future__ import annotations

import json

import httpx


class OrchestratorError(Exception):
    """The server refused or failed a request, or could not be reached.

    `status_code` is the HTTP status (None when no answer came) and `detail` the server's own message.
    """

    def __init__(self, detail: str, status_code: int | None = None) -> None:
        super().__init__(f"{status_code}: {detail}" if status_code is not None else detail)
        self.detail = detail
        self.status_code = status_code


class InvalidRequest(OrchestratorError):
    """400 or 422: the request was malformed; the detail names the field."""


class Unauthorized(OrchestratorError):
    """401 or 403: a missing or wrong API token."""


class NotFound(OrchestratorError):
    """404: no such agent, task or queue entry."""


class Conflict(OrchestratorError):
    """409: the request conflicts with the current state (e.g. killing an agent that has ended)."""


class ServerError(OrchestratorError):
    """A 5xx answer."""


class Unavailable(ServerError):
    """503: the server cannot do it now; `retry_after` is the server's hint in seconds, if it gave one."""

    def __init__(self, detail: str, status_code: int | None = 503, retry_after: float | None = None) -> None:
        super().__init__(detail, status_code)
        self.retry_after = retry_after


class UnexpectedResponse(OrchestratorError):
    """An answer the client could not read: not the JSON of the expected model (version mismatch?)."""


class ConnectionFailed(OrchestratorError):
    """The server could not be reached, or the connection broke before an answer came."""


_BY_STATUS: dict[int, type[OrchestratorError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
}


def detail_of(response: httpx.Response) -> str:
    """The server's `detail`, else the body's text, else the reason phrase."""
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
    return text[:500] or response.reason_phrase or f"HTTP {response.status_code}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_response(response: httpx.Response) -> OrchestratorError:
    """The typed exception for an error answer (the body must have been read)."""
    status = response.status_code
    detail = detail_of(response)
    if status == 503:
        return Unavailable(detail, status, _retry_after(response))
    if status >= 500:
        return ServerError(detail, status)
    return _BY_STATUS.get(status, OrchestratorError)(detail, status)


def connection_failed(exc: httpx.TransportError, url: str) -> ConnectionFailed:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ConnectionFailed(f"cannot reach the orchestrator at {url}: {exc or type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return ConnectionFailed(f"no answer from {url} in time ({type(exc).__name__})")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ConnectionFailed(f"not an http(s) URL: {url}")
    return ConnectionFailed(f"connection to {url} broke: {exc or type(exc).__name__}")
