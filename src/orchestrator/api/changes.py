"""`GET /api/changes`: one SSE stream of what changes in the store (agents, tasks, queue items, events,
the queue's settings), for the dashboard to re-read what it shows instead of polling."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.live.changes import ChangeFeed, Message

router = APIRouter(prefix="/api/changes", tags=["changes"], responses=ERROR_RESPONSES)

_KEEPALIVE_SECONDS = 15


def feed_of(request: Request) -> ChangeFeed:
    feed: ChangeFeed = request.app.state.changes
    return feed


@router.get(
    "",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`ready`, `change`, `reset` events"}
    },
)
async def changes(
    request: Request, last_event_id: Annotated[str | None, Header(max_length=100)] = None
) -> EventSourceResponse:
    """Each change as `change` {kind, id, status, task_id} with an id; `ready` {cursor} first on a fresh
    start; `reset` when what a reader missed cannot be told (it re-reads what it shows)."""
    feed = feed_of(request)
    feed.check_room()
    return EventSourceResponse(_events(feed, last_event_id), ping=_KEEPALIVE_SECONDS, send_timeout=30)


def _sse(message: Message) -> ServerSentEvent:
    if message.change is not None:
        c = message.change
        data = {"kind": c.kind, "id": c.id, "status": c.status, "task_id": c.task_id}
    else:
        data = {"cursor": str(message.cursor)}
    return ServerSentEvent(
        data=json.dumps(data, ensure_ascii=False), id=str(message.cursor), event=message.kind
    )


async def _events(feed: ChangeFeed, last_event_id: str | None) -> AsyncIterator[ServerSentEvent]:
    reader = feed.join()
    try:
        async for message in feed.follow(reader, last_event_id):
            yield _sse(message)
    finally:
        feed.leave(reader)
