"""What both clients share: where the server is, the headers, and how an answer becomes a result or an
exception."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from orchestrator import __version__, api_token
from orchestrator.client.endpoints import Call
from orchestrator.client.errors import UnexpectedResponse, error_from_response
from orchestrator.client.retry import RetryPolicy
from orchestrator.domain.hosts import is_loopback_host

URL_ENV = "ORCHESTRATOR_URL"
DATA_DIR_ENV = "ORCHESTRATOR_DATA_DIR"
TOKEN_ENV = "ORCHESTRATOR_API_TOKEN"  # noqa: S105 (the variable's name)
DEFAULT_URL = "http://127.0.0.1:3020"
DEFAULT_TIMEOUT = 30.0
# Live log streams: the server sends a keep-alive every 15 s, so a read may wait that long.
STREAM_READ_TIMEOUT = 45.0
STREAM_RECONNECT = RetryPolicy(attempts=5, backoff=0.25, max_backoff=4.0)

T = TypeVar("T")


def resolve_url(base_url: str | None) -> str:
    url = (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the orchestrator URL must start with http:// or https://, got {url!r}")
    return url


def resolve_token(token: str | None, url: str) -> str | None:
    """The token given, else $ORCHESTRATOR_API_TOKEN, else, for a service on this machine, the one it
    generated in its data directory ($ORCHESTRATOR_DATA_DIR or the per-user default). `""`: none."""
    if token is None:
        token = os.environ.get(TOKEN_ENV)
    if token is None and is_local(url):
        token = api_token.read_token(local_data_dir())
    return (token.strip() or None) if token else None


def is_local(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def local_data_dir() -> Path:
    from orchestrator.settings import default_home

    given = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(given) if given else default_home()


def retry_policy(retries: int | RetryPolicy) -> RetryPolicy:
    return retries if isinstance(retries, RetryPolicy) else RetryPolicy(attempts=max(0, retries))


def headers(token: str | None) -> dict[str, str]:
    result = {"Accept": "application/json", "User-Agent": f"orchestrator-client/{__version__}"}
    if token:
        result["Authorization"] = f"Bearer {token}"
    return result


def stream_timeout(timeout: float | None) -> httpx.Timeout:
    return httpx.Timeout(timeout, read=max(timeout or 0.0, STREAM_READ_TIMEOUT))


def finish(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer, or the typed exception for an error (the body must have been read)."""
    if response.status_code >= 400:
        raise error_from_response(response)
    try:
        return call.parse(response)
    except (ValidationError, ValueError) as exc:
        raise UnexpectedResponse(
            f"{call.method} {call.path}: the answer is not what this client expects: {exc}",
            response.status_code,
        ) from None
