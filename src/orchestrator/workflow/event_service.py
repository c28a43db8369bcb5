"""Events as the API posts and settles them: a posted event names a known task; an event being handled
cannot be marked processed under its handler."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.domain.events import EventStatus, EventType
from orchestrator.errors import Conflict, NotFound
from orchestrator.store.events import EventRow, EventStore
from orchestrator.store.tasks import TaskStore


class EventService:
    def __init__(self, events: EventStore, tasks: TaskStore, wake: Callable[[], None]) -> None:
        self._events = events
        self._tasks = tasks
        self._wake = wake

    def get(self, event_id: str) -> EventRow:
        row = self._events.get(event_id)
        if row is None:
            raise NotFound(f"event {event_id!r} not found")
        return row

    def page(
        self,
        statuses: tuple[str, ...] | None,
        type_: EventType | None,
        task_id: str | None,
        *,
        limit: int,
        offset: int,
    ) -> tuple[list[EventRow], int]:
        return self._events.page(
            statuses=statuses,
            type_=type_.value if type_ else None,
            task_id=task_id,
            limit=limit,
            offset=offset,
        )

    def post(
        self,
        event_id: str | None,
        type_: EventType,
        task_id: str | None,
        agent_id: str | None,
        payload: Mapping[str, Any],
    ) -> tuple[EventRow, bool]:
        """The event, and whether it is new (an id posted again gives the stored event back)."""
        if task_id is not None and self._tasks.get(task_id) is None:
            raise NotFound(f"task_id: task {task_id!r} not found")
        row, created = self._events.create(
            event_id or f"evt-{secrets.token_hex(8)}", type_.value, task_id, agent_id, payload
        )
        if created:
            self._wake()
        return row, created

    def mark_processed(self, event_id: str) -> EventRow:
        if self.get(event_id)["status"] == EventStatus.PROCESSING.value:
            raise Conflict(f"event {event_id} is being handled right now")
        self._events.mark_processed(event_id, only_open=False)
        return self.get(event_id)
