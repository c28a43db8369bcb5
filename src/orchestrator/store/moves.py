"""The one guarded write of a status: every status change of an agent, task, queue item, event or webhook
delivery goes through `move`, a compare-and-set on the row's current status that the lifecycle's table
allows, with the move's effect written in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Connection,
    Select,
    Table,
    Update,
    bindparam,
    select,
    update,
)

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
# Built once: the statements of every move differ only in their bound values (a statement built per call
# costs more than its execution)
_STATUS_FOR_UPDATE: dict[Kind, Select[tuple[Any]]] = {
    kind: select(table.c.status).where(table.c.id == bindparam("m_id")).with_for_update()
    for kind, table in TABLES.items()
}
_GUARDED_UPDATE: dict[Kind, Update] = {
    kind: update(table).where(table.c.id == bindparam("m_id"), table.c.status == bindparam("m_from"))
    for kind, table in TABLES.items()
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
    raw = conn.execute(_STATUS_FOR_UPDATE[lifecycle.kind], {"m_id": row_id}).scalar()
    current = lifecycle.parse(raw) if raw is not None else None
    if current is None or not lifecycle.may_move(current, to):
        return False
    if from_ is not None and current not in ({from_} if isinstance(from_, StrEnum) else from_):
        return False
    values = {**fields, "status": to.value}
    if "updated_at" in table.c:
        values.setdefault("updated_at", utc_now())
    guarded = _GUARDED_UPDATE[lifecycle.kind].where(*where) if where else _GUARDED_UPDATE[lifecycle.kind]
    if any(isinstance(value, ClauseElement) for value in values.values()):  # e.g. a counter's `+ 1`
        guarded = guarded.values(**values)
        values = {}
    changed = conn.execute(guarded, {**values, "m_id": row_id, "m_from": current.value}).rowcount
    if changed != 1:
        return False
    effect = lifecycle.effect(current, to)
    if effect.webhook is not None:
        payload: dict[str, Any] = {lifecycle.subject: row_id}
        for name in effect.reports:
            payload[name] = to.value if name == "status" else fields.get(name)
        enqueue(conn, effect.webhook, payload)
    return True
