from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Hashable
from contextlib import aclosing
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from orchestrator.agents.live_log import LiveItem, resume_cursor
from orchestrator.agents.log_bus import FlagItem, LogItem
from orchestrator.api.deps import AgentsDep, LiveLogDep, ServicesDep
from orchestrator.api.errors import ERROR_RESPONSES, RATE_LIMITED
from orchestrator.domain.types import AgentStatus, AgentType
from orchestrator.models import (
    MAX_SQL_INT,
    ActiveAgents,
    Agent,
    AgentDetail,
    AgentPage,
    Analytics,
    LogLine,
    LogPage,
    RetryBody,
    SpawnBody,
)
from orchestrator.store.agents import AgentFilter, AgentStore

router = APIRouter(prefix="/api/agents", tags=["agents"], responses=ERROR_RESPONSES)

_KEEPALIVE_SECONDS = 15


@router.get("", response_model=AgentPage)
async def list_agents(
    services: ServicesDep,
    request: Request,
    status: AgentStatus | None = None,
    agent_type: AgentType | None = None,
    task_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_SQL_INT)] = 0,
) -> Response:
    flt = AgentFilter(status=status, agent_type=agent_type.value if agent_type else None, task_id=task_id)
    key = (flt, limit, offset)
    version = services.db.change_counter()  # read before the page: a change after it is seen next time
    pages = _pages_of(request)
    body = pages.get(key, version)
    if body is None:
        body = await anyio.to_thread.run_sync(
            _agent_page_json, services.agent_store, flt, limit, offset, limiter=pages.readers
        )
        pages.put(key, version, body)
    return Response(body, media_type="application/json")


class PageCache:
    """Encoded pages by request, each kept only while the database's change counter stays the same."""

    MAX_PAGES = 256

    def __init__(self) -> None:
        self._pages: dict[Hashable, tuple[int, bytes]] = {}
        # reads of a page in worker threads at once: more would only fight over the GIL and the pool
        self.readers = anyio.CapacityLimiter(4)

    def get(self, key: Hashable, version: int | None) -> bytes | None:
        found = self._pages.get(key)
        return found[1] if found is not None and version is not None and found[0] == version else None

    def put(self, key: Hashable, version: int | None, body: bytes) -> None:
        if version is None:
            return
        if len(self._pages) >= self.MAX_PAGES:
            self._pages.clear()
        self._pages[key] = (version, body)


def _pages_of(request: Request) -> PageCache:
    pages: PageCache | None = getattr(request.app.state, "agent_pages", None)
    if pages is None:
        pages = request.app.state.agent_pages = PageCache()
    return pages


def _agent_page_json(store: AgentStore, flt: AgentFilter, limit: int, offset: int) -> bytes:
    """Read, checked against the model and encoded in one worker thread: one hop per request (the page
    is dashboards' and scripts' poll)."""
    rows, total = store.page(flt, limit=limit, offset=offset)
    page = AgentPage(items=[Agent.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)
    return AgentPage.__pydantic_serializer__.to_json(page)


@router.get("/active", response_model=ActiveAgents)
def active_agents(services: ServicesDep) -> ActiveAgents:
    return ActiveAgents(ids=[r["id"] for r in services.agent_store.active()])


@router.get("/analytics", response_model=Analytics)
def analytics(services: ServicesDep) -> Analytics:
    return Analytics(**services.agent_store.analytics(), running_here=services.agents.running_count)


@router.get("/{agent_id}", response_model=AgentDetail)
def get_agent(agent_id: str, agents: AgentsDep) -> AgentDetail:
    return AgentDetail.model_validate(agents.get(agent_id))


@router.post("/spawn", response_model=AgentDetail, status_code=201, responses=RATE_LIMITED)
async def spawn(body: SpawnBody, agents: AgentsDep) -> AgentDetail:
    return AgentDetail.model_validate(await agents.spawn(body))


@router.post("/{agent_id}/kill", response_model=AgentDetail)
async def kill(agent_id: str, agents: AgentsDep) -> AgentDetail:
    return AgentDetail.model_validate(await agents.kill(agent_id))


@router.post("/{agent_id}/retry", response_model=AgentDetail, status_code=201, responses=RATE_LIMITED)
async def retry(agent_id: str, agents: AgentsDep, body: RetryBody | None = None) -> AgentDetail:
    resume = body.resume if body is not None else False
    return AgentDetail.model_validate(await agents.retry(agent_id, resume=resume))


@router.get(
    "/{agent_id}/logs",
    response_model=LogPage,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON page, or a live SSE stream"}},
)
async def logs(
    agent_id: str,
    request: Request,
    agents: AgentsDep,
    live: LiveLogDep,
    after: Annotated[int, Query(ge=0, le=MAX_SQL_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    row = agents.get(agent_id)
    if "text/event-stream" in request.headers.get("accept", ""):
        start = after if last_event_id is None else resume_cursor(last_event_id)
        return EventSourceResponse(
            _events(live.follow(agent_id, start, request.is_disconnected)),
            ping=_KEEPALIVE_SECONDS,
            send_timeout=30,
        )
    page = live.page(agent_id, after, limit)
    return LogPage(
        agent_id=agent_id,
        status=AgentStatus(row["status"]),
        items=[LogLine.model_validate(i) for i in page.lines],
        next_after=page.next_after,
        has_more=page.has_more,
    )


def _sse(item: LiveItem) -> ServerSentEvent:
    if isinstance(item, LogItem):
        data = {"id": item.id, "timestamp": item.timestamp, "stream": item.stream, "content": item.content}
        return ServerSentEvent(data=json.dumps(data, ensure_ascii=False), id=str(item.id), event="log")
    if isinstance(item, FlagItem):
        return ServerSentEvent(data=json.dumps({"flag": item.name, "detail": item.detail}), event="flag")
    payload = Agent.model_validate(item.agent).model_dump(mode="json")
    return ServerSentEvent(data=json.dumps(payload, ensure_ascii=False), event="end")


async def _events(items: AsyncGenerator[LiveItem]) -> AsyncIterator[ServerSentEvent]:
    async with aclosing(items):  # the follow's bus subscription ends with the stream
        async for item in items:
            yield _sse(item)
