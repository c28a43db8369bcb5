"""Events: idempotent create, per-task ordered claim, and the outcome of handling."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Select, and_, bindparam, func, insert, or_, select

from orchestrator.clock import utc_now
from orchestrator.domain.events import EventStatus
from orchestrator.domain.lifecycles import EVENTS
from orchestrator.store.db import Database
from orchestrator.store.moves import move
from orchestrator.store.tables import events

EventRow = dict[str, Any]
_OPEN = frozenset({EventStatus.PENDING, EventStatus.PROCESSING})


def _next_due() -> Select[Any]:
    """The oldest due pending event with no older open event of its task, locked (`e_now`: the time)."""
    earlier = events.alias()
    blocked = (
        select(earlier.c.id)
        .where(
            earlier.c.task_id == events.c.task_id,
            earlier.c.seq < events.c.seq,
            earlier.c.status.in_([s.value for s in _OPEN]),
        )
        .exists()
    )
    return (
        select(events)
        .where(
            events.c.status == EventStatus.PENDING.value,
            or_(events.c.next_attempt_at.is_(None), events.c.next_attempt_at <= bindparam("e_now")),
            or_(events.c.task_id.is_(None), ~blocked),
        )
        .order_by(events.c.seq)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


# The statements of every event's path, built once (building one costs more than running it)
_NEXT_DUE = _next_due()
_ROW = select(events).where(events.c.id == bindparam("e_id"))
_LAST_SEQ = select(func.coalesce(func.max(events.c.seq), 0))
_INSERT = insert(events)


def decode_event(row: RowMapping | Mapping[str, Any]) -> EventRow:
    out = dict(row)
    out["payload"] = json.loads(out["payload"]) if out.get("payload") else {}
    return out


def _later(seconds: float) -> str:
    return (
        (datetime.now(UTC) + timedelta(seconds=seconds))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class EventStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self,
        event_id: str,
        type_: str,
        task_id: str | None,
        agent_id: str | None,
        payload: Mapping[str, Any],
        *,
        not_before: str | None = None,
    ) -> tuple[EventRow, bool]:
        """Stores an event; an existing id is returned as it is (idempotent). Second value: created now."""
        with self._db.write() as conn:
            self._db.serialize(conn, events)
            found = conn.execute(_ROW, {"e_id": event_id}).mappings().first()
            if found is not None:
                return decode_event(found), False
            seq = conn.execute(_LAST_SEQ).scalar_one()
            conn.execute(
                _INSERT,
                {
                    "id": event_id,
                    "type": type_,
                    "task_id": task_id,
                    "agent_id": agent_id,
                    "payload": json.dumps(dict(payload)),
                    "status": EVENTS.initial.value,
                    "created_at": utc_now(),
                    "next_attempt_at": not_before,
                    "seq": int(seq) + 1,
                },
            )
            row = conn.execute(_ROW, {"e_id": event_id}).mappings().one()
        return decode_event(row), True

    def get(self, event_id: str) -> EventRow | None:
        with self._db.read() as conn:
            row = conn.execute(_ROW, {"e_id": event_id}).mappings().first()
        return decode_event(row) if row is not None else None

    def spawner_of(self, agent_id: str) -> EventRow | None:
        """The event whose handling was to start this agent."""
        with self._db.read() as conn:
            row = conn.execute(select(events).where(events.c.spawned_agent_id == agent_id)).mappings().first()
        return decode_event(row) if row is not None else None

    def page(
        self,
        *,
        statuses: tuple[str, ...] | None,
        type_: str | None,
        task_id: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[EventRow], int]:
        conditions: list[ColumnElement[bool]] = []
        if statuses:
            conditions.append(events.c.status.in_(statuses))
        if type_:
            conditions.append(events.c.type == type_)
        if task_id:
            conditions.append(events.c.task_id == task_id)
        query = select(events).order_by(events.c.seq.desc()).limit(limit).offset(offset)
        count = select(func.count()).select_from(events)
        if conditions:
            query = query.where(and_(*conditions))
            count = count.where(and_(*conditions))
        with self._db.read() as conn:
            rows = [decode_event(r) for r in conn.execute(query).mappings()]
            total = conn.execute(count).scalar_one()
        return rows, int(total)

    def claim_next(self, instance_id: str, agent_id_for: Callable[[EventRow], str | None]) -> EventRow | None:
        """The oldest due pending event with no older open event of its task; claimed, its agent id fixed."""
        with self._db.write() as conn:
            row = conn.execute(_NEXT_DUE, {"e_now": utc_now()}).mappings().first()
            if row is None:
                return None
            event = decode_event(row)
            spawned = event["spawned_agent_id"] or agent_id_for(event)
            if not move(
                conn,
                EVENTS,
                event["id"],
                EventStatus.PROCESSING,
                attempts=events.c.attempts + 1,
                instance_id=instance_id,
                spawned_agent_id=spawned,
            ):
                return None
        event.update(
            status=EventStatus.PROCESSING.value, attempts=event["attempts"] + 1, spawned_agent_id=spawned
        )
        return event

    def mark_processed(self, event_id: str, *, only_open: bool = True) -> bool:
        """Ends the event as handled; unless `only_open`, also a failed one."""
        sources = _OPEN if only_open else EVENTS.sources_for(EventStatus.PROCESSED)
        with self._db.write() as conn:
            return move(
                conn,
                EVENTS,
                event_id,
                EventStatus.PROCESSED,
                from_=sources,
                processed_at=utc_now(),
                error=None,
            )

    def retry_later(self, event_id: str, error: str, delay: float) -> bool:
        """False when the event is no longer being handled (another instance released it meanwhile)."""
        with self._db.write() as conn:
            return move(
                conn, EVENTS, event_id, EventStatus.PENDING, error=error, next_attempt_at=_later(delay)
            )

    def fail(self, event_id: str, error: str) -> bool:
        """False when the event is no longer being handled (another instance released it meanwhile)."""
        with self._db.write() as conn:
            return move(conn, EVENTS, event_id, EventStatus.FAILED, error=error, processed_at=utc_now())

    def processing(self) -> list[EventRow]:
        with self._db.read() as conn:
            return [
                decode_event(r)
                for r in conn.execute(
                    select(events)
                    .where(events.c.status == EventStatus.PROCESSING.value)
                    .order_by(events.c.seq)
                ).mappings()
            ]

    def release(self, event_id: str) -> None:
        """A claimed event whose handling did not finish goes back to pending (its agent id kept)."""
        with self._db.write() as conn:
            move(conn, EVENTS, event_id, EventStatus.PENDING)

    def next_due_in(self) -> float | None:
        """Seconds until the soonest delayed pending event is due, if any."""
        with self._db.read() as conn:
            soonest = conn.execute(
                select(func.min(events.c.next_attempt_at)).where(
                    events.c.status == EventStatus.PENDING.value, events.c.next_attempt_at.is_not(None)
                )
            ).scalar_one_or_none()
        if soonest is None:
            return None
        due = datetime.fromisoformat(str(soonest).replace("Z", "+00:00"))
        return max(0.0, (due - datetime.now(UTC)).total_seconds())
