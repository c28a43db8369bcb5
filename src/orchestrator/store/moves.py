"""The one guarded write of a status: every status change of an agent, task, queue item, event or webhook
delivery goes through `move`, a compare-and-set on the row's current status that the lifecycle's table
allows, with the move's effect written in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Table, select, update

from orchestrator.clock import utc_now
from orchestrator.domain.lifecycles import Kind, Lifecycle
from orchestrator.store.outbox import enqueue
from orchestrator.store.tables import agents, events, queue, tasks, webhook_deliveries

S = TypeVar("S", bound=StrEnum)

TABLES: dict[Kind, Table] = {
    Kind.AGENT: agents,
    Kind.TASK: tasks,
    Kind.QUEUE_ITEM: queue,
    Kind.EVENT: events,
    Kind.WEBHOOK_DELIVERY: webhook_deliveries,
}


def move(
    conn: Connection,
    lifecycle: Lifecycle[S],
    row_id: str | int,
    to: S,
    *,
    from_: S | frozenset[S] | None = None,
    where: Iterable[ColumnElement[bool]] = (),
    **fields: Any,
) -> bool:
    """Moves the row to `to` if its lifecycle allows that from the status it has now (and that status is
    `from_`, or one of them, when given, and the `where` guards hold), writing `fields` with it; then
    announces the move's webhook. False, with nothing written, when refused or when another writer
    changed the row first. Call inside the transaction the move belongs to."""
    if "status" in fields:
        raise ValueError("the status is `to`, not a field")
    table = TABLES[lifecycle.kind]
    raw = conn.execute(select(table.c.status).where(table.c.id == row_id).with_for_update()).scalar()
    current = lifecycle.parse(raw) if raw is not None else None
    if current is None or not lifecycle.may_move(current, to):
        return False
    if from_ is not None and current not in ({from_} if isinstance(from_, StrEnum) else from_):
        return False
    values = {**fields, "status": to.value}
    if "updated_at" in table.c:
        values.setdefault("updated_at", utc_now())
    changed = conn.execute(
        update(table).where(table.c.id == row_id, table.c.status == current.value, *where).values(**values)
    ).rowcount
    if changed != 1:
        return False
    effect = lifecycle.effect(current, to)
    if effect.webhook is not None:
        payload: dict[str, Any] = {lifecycle.subject: row_id}
        for name in effect.reports:
            payload[name] = to.value if name == "status" else fields.get(name)
        enqueue(conn, effect.webhook, payload)
    return True
