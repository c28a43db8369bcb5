from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from orchestrator.agents.log_bus import EndItem, FlagItem, LogItem
from orchestrator.agents.manager import SpawnRequest
from orchestrator.api.deps import ServicesDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.domain.types import AgentStatus, AgentType
from orchestrator.domain.watchdog import Budget
from orchestrator.models import (
    MAX_SQL_INT,
    ActiveAgents,
    Agent,
    AgentDetail,
    AgentPage,
    Analytics,
    ErrorBody,
    LogLine,
    LogPage,
    RetryBody,
    SpawnBody,
)
from orchestrator.prompts.context import task_context
from orchestrator.prompts.render import render
from orchestrator.services import Services
from orchestrator.store.agents import AgentFilter, AgentRow

router = APIRouter(prefix="/api/agents", tags=["agents"], responses=ERROR_RESPONSES)

RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorBody, "description": "Past SPAWN_RATE_PER_MINUTE: retry after Retry-After seconds"}
}
_PAGE = 1000
_KEEPALIVE_SECONDS = 15
_REMOTE_POLL_SECONDS = 0.1


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
    offset: Annotated[int, Query(ge=0, le=MAX_SQL_INT)] = 0,
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


def _within_rate(services: Services) -> None:
    wait = services.spawn_rate.take(time.monotonic())
    if wait is not None:
        raise HTTPException(
            429,
            f"spawn rate: more than {services.spawn_rate.per_minute} agents a minute "
            f"(SPAWN_RATE_PER_MINUTE); retry in {math.ceil(wait)} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


@router.post("/spawn", response_model=AgentDetail, status_code=201, responses=RATE_LIMITED)
async def spawn(body: SpawnBody, services: ServicesDep) -> AgentDetail:
    prompt = body.prompt
    if prompt is None:
        if body.task_id is None:
            raise HTTPException(422, "prompt: required when no task_id is given")
        task = services.task_store.get(body.task_id)
        if task is None:
            raise HTTPException(404, f"task_id: task {body.task_id!r} not found")
        prompt = render(body.agent_type, task_context(task))
    _within_rate(services)
    row = await services.agents.spawn(
        SpawnRequest(
            agent_type=body.agent_type,
            prompt=prompt,
            task_id=body.task_id,
            repo=body.repo,
            model=body.model,
            timeout_seconds=body.timeout_seconds,
            max_turns=body.max_turns,
            budget=Budget(**body.budget.model_dump()) if body.budget else None,
        )
    )
    return AgentDetail.model_validate(row)


@router.post("/{agent_id}/kill", response_model=AgentDetail)
async def kill(agent_id: str, services: ServicesDep) -> AgentDetail:
    return AgentDetail.model_validate(await services.agents.kill(agent_id))


@router.post("/{agent_id}/retry", response_model=AgentDetail, status_code=201, responses=RATE_LIMITED)
async def retry(agent_id: str, services: ServicesDep, body: RetryBody | None = None) -> AgentDetail:
    resume = body.resume if body is not None else False
    _found(services, agent_id)
    _within_rate(services)
    return AgentDetail.model_validate(await services.agents.retry(agent_id, resume=resume))


@router.get(
    "/{agent_id}/logs",
    response_model=LogPage,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON page, or a live SSE stream"}},
)
async def logs(
    agent_id: str,
    request: Request,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0, le=MAX_SQL_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    row = _found(services, agent_id)
    if "text/event-stream" in request.headers.get("accept", ""):
        start = after
        if last_event_id is not None:
            cursor = last_event_id.strip()
            if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 19 or int(cursor) > MAX_SQL_INT:
                raise HTTPException(422, "Last-Event-ID: must be a log line id")
            start = int(cursor)
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
            local = services.agents.supervises(agent_id)
            try:
                bus_item = await asyncio.wait_for(sub.queue.get(), 1.0 if local else _REMOTE_POLL_SECONDS)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                if not local:
                    async for event in catch_up():
                        yield event
                    row = await asyncio.to_thread(services.agent_store.get, agent_id)
                    if row is not None and AgentStatus(row["status"]).is_terminal:
                        async for event in catch_up():
                            yield event
                        yield _end_event(row)
                        return
                continue
            if isinstance(bus_item, LogItem):
                if bus_item.id > last:
                    yield _log_event(bus_item)
                    last = bus_item.id
            elif isinstance(bus_item, FlagItem):
                yield ServerSentEvent(
                    data=json.dumps({"flag": bus_item.name, "detail": bus_item.detail}), event="flag"
                )
            elif isinstance(bus_item, EndItem):
                async for event in catch_up():
                    yield event
                yield _end_event(bus_item.agent)
                return
    finally:
        sub.close()
