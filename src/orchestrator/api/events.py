from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from orchestrator.api.deps import EventsDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.domain.events import EventStatus, EventType
from orchestrator.models import MAX_SQL_INT, Event, EventCreate, EventPage
from orchestrator.workflow.event_service import EventService

router = APIRouter(prefix="/api/events", tags=["events"], responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=MAX_SQL_INT)]
TaskFilter = Annotated[str | None, Query(max_length=128)]


def _page(
    events: EventService,
    statuses: tuple[str, ...] | None,
    type_: EventType | None,
    task_id: str | None,
    limit: int,
    offset: int,
) -> EventPage:
    rows, total = events.page(statuses, type_, task_id, limit=limit, offset=offset)
    return EventPage(items=[Event.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("", response_model=EventPage)
def list_events(
    events: EventsDep,
    type: EventType | None = None,
    task_id: TaskFilter = None,
    status: EventStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> EventPage:
    return _page(events, (status.value,) if status else None, type, task_id, limit, offset)


@router.get("/pending", response_model=EventPage)
def pending_events(
    events: EventsDep, task_id: TaskFilter = None, limit: Limit = 100, offset: Offset = 0
) -> EventPage:
    open_ = (EventStatus.PENDING.value, EventStatus.PROCESSING.value)
    return _page(events, open_, None, task_id, limit, offset)


@router.get("/processed", response_model=EventPage)
def processed_events(
    events: EventsDep, task_id: TaskFilter = None, limit: Limit = 100, offset: Offset = 0
) -> EventPage:
    done = (EventStatus.PROCESSED.value, EventStatus.FAILED.value)
    return _page(events, done, None, task_id, limit, offset)


@router.get("/{event_id}", response_model=Event)
def get_event(event_id: str, events: EventsDep) -> Event:
    return Event.model_validate(events.get(event_id))


@router.post(
    "", response_model=Event, status_code=201, responses={200: {"model": Event, "description": "Existed"}}
)
def create_event(body: EventCreate, events: EventsDep, response: Response) -> Event:
    row, created = events.post(body.id, body.type, body.task_id, body.agent_id, body.payload)
    if not created:
        response.status_code = 200
    return Event.model_validate(row)


@router.post("/{event_id}/processed", response_model=Event)
def mark_processed(event_id: str, events: EventsDep) -> Event:
    return Event.model_validate(events.mark_processed(event_id))
