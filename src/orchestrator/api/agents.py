from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from orchestrator.agents.log_bus import EndItem, LogItem
from orchestrator.agents.manager import SpawnRequest
from orchestrator.api.deps import ServicesDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.domain.types import AgentStatus, AgentType
from orchestrator.models import (
    ActiveAgents,
    Agent,
    AgentDetail,
    AgentPage,
    Analytics,
    LogLine,
    LogPage,
    SpawnBody,
)
from orchestrator.prompts.context import task_context
from orchestrator.prompts.render import render
from orchestrator.services import Services
from orchestrator.store.agents import AgentFilter, AgentRow

router = APIRouter(prefix="/api/agents", tags=["agents"], responses=ERROR_RESPONSES)

_PAGE = 1000
_KEEPALIVE_SECONDS = 15


def _found(services: Services, agent_id: str) -> AgentRow:
    row = services.agent_store.get(agent_id)
    if row is None:
        raise HTTPException(404, f"agent {agent_id!r} not found")
    return row


@router.get("", response_model=AgentPage)
def list_agents(
    services: ServicesDep,
    status: AgentStatus | None = None,
    agent_type: AgentType | None = None,
    task_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AgentPage:
    rows, total = services.agent_store.page(
        AgentFilter(status=status, agent_type=agent_type.value if agent_type else None, task_id=task_id),
        limit=limit,
        offset=offset,
    )
    return AgentPage(items=[Agent.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/active", response_model=ActiveAgents)
def active_agents(services: ServicesDep) -> ActiveAgents:
    return ActiveAgents(ids=[r["id"] for r in services.agent_store.active()])


@router.get("/analytics", response_model=Analytics)
def analytics(services: ServicesDep) -> Analytics:
    return Analytics(**services.agent_store.analytics(), running_here=services.agents.running_count)


@router.get("/{agent_id}", response_model=AgentDetail)
def get_agent(agent_id: str, services: ServicesDep) -> AgentDetail:
    return AgentDetail.model_validate(_found(services, agent_id))


@router.post("/spawn", response_model=AgentDetail, status_code=201)
async def spawn(body: SpawnBody, services: ServicesDep) -> AgentDetail:
    prompt = body.prompt
    if prompt is None:
        if body.task_id is None:
            raise HTTPException(422, "prompt: required when no task_id is given")
        task = services.task_store.get(body.task_id)
        if task is None:
            raise HTTPException(404, f"task_id: task {body.task_id!r} not found")
        prompt = render(body.agent_type, task_context(task))
    row = await services.agents.spawn(
        SpawnRequest(
            agent_type=body.agent_type,
            prompt=prompt,
            task_id=body.task_id,
            repo=body.repo,
            model=body.model,
            timeout_seconds=body.timeout_seconds,
            max_turns=body.max_turns,
        )
    )
    return AgentDetail.model_validate(row)


@router.post("/{agent_id}/kill", response_model=AgentDetail)
async def kill(agent_id: str, services: ServicesDep) -> AgentDetail:
    return AgentDetail.model_validate(await services.agents.kill(agent_id))


@router.post("/{agent_id}/retry", response_model=AgentDetail, status_code=201)
async def retry(agent_id: str, services: ServicesDep) -> AgentDetail:
    return AgentDetail.model_validate(await services.agents.retry(agent_id))


@router.get(
    "/{agent_id}/logs",
    response_model=LogPage,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON page, or a live SSE stream"}},
)
async def logs(
    agent_id: str,
    request: Request,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    row = _found(services, agent_id)
    if "text/event-stream" in request.headers.get("accept", ""):
        start = after
        if last_event_id is not None:
            if not last_event_id.strip().isdigit():
                raise HTTPException(422, "Last-Event-ID: must be a log line id")
            start = int(last_event_id)
        return EventSourceResponse(
            _stream(services, agent_id, start, request), ping=_KEEPALIVE_SECONDS, send_timeout=30
        )
    items = services.log_store.after(agent_id, after, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return LogPage(
        agent_id=agent_id,
        status=AgentStatus(row["status"]),
        items=[LogLine.model_validate(i) for i in items],
        next_after=items[-1]["id"] if items else after,
        has_more=more,
    )


def _log_event(item: dict[str, Any] | LogItem) -> ServerSentEvent:
    if isinstance(item, LogItem):
        data = {"id": item.id, "timestamp": item.timestamp, "stream": item.stream, "content": item.content}
    else:
        data = {k: item[k] for k in ("id", "timestamp", "stream", "content")}
    return ServerSentEvent(data=json.dumps(data, ensure_ascii=False), id=str(data["id"]), event="log")


def _end_event(row: AgentRow) -> ServerSentEvent:
    payload = Agent.model_validate(row).model_dump(mode="json")
    return ServerSentEvent(data=json.dumps(payload, ensure_ascii=False), event="end")


async def _stream(
    services: Services, agent_id: str, start: int, request: Request
) -> AsyncIterator[ServerSentEvent]:
    """Backlog from the store, then live lines from the bus; ids dedupe the overlap."""
    sub = services.bus.subscribe(agent_id)
    last = start

    async def catch_up() -> AsyncIterator[ServerSentEvent]:
        nonlocal last
        while True:
            batch = await asyncio.to_thread(services.log_store.after, agent_id, last, _PAGE)
            for item in batch:
                yield _log_event(item)
                last = item["id"]
            if len(batch) < _PAGE:
                return

    try:
        async for event in catch_up():
            yield event
        row = services.agent_store.get(agent_id)
        if row is None:
            return
        if AgentStatus(row["status"]).is_terminal:
            yield _end_event(row)
            return
        while True:
            if sub.lagged:
                sub.resync()
                async for event in catch_up():
                    yield event
                continue
            try:
                bus_item = await asyncio.wait_for(sub.queue.get(), 1.0)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                continue
            if isinstance(bus_item, LogItem):
                if bus_item.id > last:
                    yield _log_event(bus_item)
                    last = bus_item.id
            elif isinstance(bus_item, EndItem):
                async for event in catch_up():
                    yield event
                yield _end_event(bus_item.agent)
                return
    finally:
        sub.close()
