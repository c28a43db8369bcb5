from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from orchestrator.api.deps import ServicesDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.domain.events import EventStatus, EventType
from orchestrator.models import MAX_SQL_INT, Event, EventCreate, EventPage
from orchestrator.services import Services

router = APIRouter(prefix="/api/events", tags=["events"], responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=MAX_SQL_INT)]
TaskFilter = Annotated[str | None, Query(max_length=128)]


def _page(
    services: Services,
    statuses: tuple[str, ...] | None,
    type_: EventType | None,
    task_id: str | None,
    limit: int,
    offset: int,
) -> EventPage:
    rows, total = services.event_store.page(
        statuses=statuses, type_=type_.value if type_ else None, task_id=task_id, limit=limit, offset=offset
    )
    return EventPage(items=[Event.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("", response_model=EventPage)
def list_events(
    services: ServicesDep,
    type: EventType | None = None,
    task_id: TaskFilter = None,
    status: EventStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> EventPage:
    return _page(services, (status.value,) if status else None, type, task_id, limit, offset)


@router.get("/pending", response_model=EventPage)
def pending_events(
    services: ServicesDep, task_id: TaskFilter = None, limit: Limit = 100, offset: Offset = 0
) -> EventPage:
    open_ = (EventStatus.PENDING.value, EventStatus.PROCESSING.value)
    return _page(services, open_, None, task_id, limit, offset)


@router.get("/processed", response_model=EventPage)
def processed_events(
    services: ServicesDep, task_id: TaskFilter = None, limit: Limit = 100, offset: Offset = 0
) -> EventPage:
    done = (EventStatus.PROCESSED.value, EventStatus.FAILED.value)
    return _page(services, done, None, task_id, limit, offset)


@router.get("/{event_id}", response_model=Event)
def get_event(event_id: str, services: ServicesDep) -> Event:
    row = services.event_store.get(event_id)
    if row is None:
        raise HTTPException(404, f"event {event_id!r} not found")
    return Event.model_validate(row)


@router.post(
    "", response_model=Event, status_code=201, responses={200: {"model": Event, "description": "Existed"}}
)
def create_event(body: EventCreate, services: ServicesDep, response: Response) -> Event:
    if body.task_id is not None and services.task_store.get(body.task_id) is None:
        raise HTTPException(404, f"task_id: task {body.task_id!r} not found")
    event_id = body.id or f"evt-{secrets.token_hex(8)}"
    row, created = services.event_store.create(
        event_id, body.type.value, body.task_id, body.agent_id, body.payload
    )
    if created:
        services.events.wake()
    else:
        response.status_code = 200
    return Event.model_validate(row)


@router.post("/{event_id}/processed", response_model=Event)
def mark_processed(event_id: str, services: ServicesDep) -> Event:
    row = services.event_store.get(event_id)
    if row is None:
        raise HTTPException(404, f"event {event_id!r} not found")
    if row["status"] == EventStatus.PROCESSING.value:
        raise HTTPException(409, f"event {event_id} is being handled right now")
    services.event_store.mark_processed(event_id, only_open=False)
    updated = services.event_store.get(event_id)
    assert updated is not None
    return Event.model_validate(updated)
