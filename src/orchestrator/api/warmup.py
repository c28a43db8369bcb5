"""What the web stack builds on first use, built at start-up instead: otherwise the first caller of each
router waits while FastAPI builds that router's routes (their models and dependencies: tens of ms each,
hundreds on a loaded host), and the first worker-thread hop waits while AnyIO imports its backend."""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Scope

# A path no route takes (no URL can carry a NUL): routing tries, and so builds, every router on the way.
_NO_ROUTE: Scope = {
    "type": "http",
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/\0",
    "raw_path": b"/%00",
    "root_path": "",
    "query_string": b"",
    "headers": [],
}


async def warm_up(router: ASGIApp) -> None:
    """`router` is the app's router (not the app: no middleware, no guard, nothing logged or counted)."""
    await anyio.to_thread.run_sync(_nothing)
    await router(dict(_NO_ROUTE), _no_body, _discard)


def _nothing() -> None:
    return None


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Message) -> None:
    return None
