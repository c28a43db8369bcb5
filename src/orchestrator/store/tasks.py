"""Task rows: create, page, guarded updates, delete, and a task's history."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, delete, func, insert, select, update

from orchestrator.clock import utc_now
from orchestrator.domain.lifecycles import TASKS
from orchestrator.domain.types import ACTIVE_AGENT_STATUSES, QueueItemStatus, TaskStatus
from orchestrator.errors import Conflict
from orchestrator.store.agents import decode_agent
from orchestrator.store.db import Database
from orchestrator.store.moves import move
from orchestrator.store.outbox import enqueue
from orchestrator.store.tables import agents, events, queue, tasks

TaskRow = dict[str, Any]


class TaskBusy(Conflict):
    """The task has an agent at work or a queue item being processed."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} has an agent at work: kill it first")
        self.task_id = task_id


def decode_task(row: RowMapping | Mapping[str, Any]) -> TaskRow:
    out = dict(row)
    out["repos"] = json.loads(out["repos"]) if out.get("repos") else []
    out["execution_plan"] = json.loads(out["execution_plan"]) if out.get("execution_plan") else None
    out["depends_on"] = json.loads(out["depends_on"]) if out.get("depends_on") else []
    out["budget"] = json.loads(out["budget"]) if out.get("budget") else None
    return out


def _encode(fields: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if "repos" in out:
        out["repos"] = json.dumps(out["repos"]) if out["repos"] is not None else None
    for key in ("execution_plan", "depends_on", "budget"):
        if key in out and not isinstance(out[key], str | None):
            out[key] = json.dumps(out[key])
    return out


_ROW = select(tasks).where(tasks.c.id == bindparam("t_id"))  # built once: every queue start reads it


def move_task(conn: Connection, task_id: str, target: TaskStatus, **fields: Any) -> bool:
    """Moves a task to `target` only from a status that may precede it (or is it already)."""
    return move(conn, TASKS, task_id, target, **_encode(fields))


class TaskStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, row: Mapping[str, Any]) -> TaskRow | None:
        """None when a task with that id exists."""
        now = utc_now()
        values = _encode({"created_at": now, "updated_at": now, **row, "status": TASKS.initial.value})
        with self._db.write() as conn:
            if conn.execute(select(tasks.c.id).where(tasks.c.id == values["id"])).first() is not None:
                return None
            conn.execute(insert(tasks).values(**values))
        return self.get(values["id"])

    def get(self, task_id: str) -> TaskRow | None:
        with self._db.read() as conn:
            row = conn.execute(_ROW, {"t_id": task_id}).mappings().first()
        return decode_task(row) if row is not None else None

    def page(self, status: TaskStatus | None, *, limit: int, offset: int) -> tuple[list[TaskRow], int]:
        query = select(tasks).order_by(tasks.c.created_at.desc(), tasks.c.id).limit(limit).offset(offset)
        count = select(func.count()).select_from(tasks)
        if status is not None:
            query = query.where(tasks.c.status == status.value)
            count = count.where(tasks.c.status == status.value)
        with self._db.read() as conn:
            rows = [decode_task(r) for r in conn.execute(query).mappings()]
            total = conn.execute(count).scalar_one()
        return rows, int(total)

    def update(self, task_id: str, fields: Mapping[str, Any], status: TaskStatus | None) -> bool:
        """Applies fields and, if given, a status move; False when the move is not allowed. A queued
        task moved elsewhere leaves the queue in the same transaction, so no agent starts for it."""
        if "status" in fields:
            raise ValueError("a task's status is the `status` argument, not a field")
        with self._db.write() as conn:
            if status is not None and not move_task(conn, task_id, status, **fields):
                return False
            if status is not None:
                conn.execute(
                    delete(queue).where(
                        queue.c.task_id == task_id, queue.c.status == QueueItemStatus.QUEUED.value
                    )
                )
            if status is None and fields:
                conn.execute(
                    update(tasks).where(tasks.c.id == task_id).values(**_encode(fields), updated_at=utc_now())
                )
        return True

    def record_pr(self, task_id: str, pr: Mapping[str, Any], created: bool) -> None:
        with self._db.write() as conn:
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(**pr, updated_at=utc_now()))
            if created:
                enqueue(conn, "pr.opened", {"task_id": task_id, **pr})

    def waiting(self, kinds: tuple[str, ...]) -> list[TaskRow]:
        """Tasks in progress that wait for one of `kinds` (the PR watcher's work list)."""
        query = select(tasks).where(
            tasks.c.waiting_for.in_(kinds), tasks.c.status == TaskStatus.IN_PROGRESS.value
        )
        with self._db.read() as conn:
            return [decode_task(r) for r in conn.execute(query.order_by(tasks.c.id)).mappings()]

    def move(self, task_id: str, target: TaskStatus, **fields: Any) -> bool:
        with self._db.write() as conn:
            return move_task(conn, task_id, target, **fields)

    def delete(self, task_id: str) -> bool:
        active = [s.value for s in ACTIVE_AGENT_STATUSES]
        with self._db.write() as conn:
            working = conn.execute(
                select(agents.c.id).where(agents.c.task_id == task_id, agents.c.status.in_(active)).limit(1)
            ).first()
            processing = conn.execute(
                select(queue.c.id)
                .where(queue.c.task_id == task_id, queue.c.status == QueueItemStatus.PROCESSING.value)
                .limit(1)
            ).first()
            if working is not None or processing is not None:
                raise TaskBusy(task_id)
            conn.execute(delete(queue).where(queue.c.task_id == task_id))
            return conn.execute(delete(tasks).where(tasks.c.id == task_id)).rowcount == 1

    def dependency_graph(self) -> dict[str, list[str]]:
        with self._db.read() as conn:
            rows = conn.execute(select(tasks.c.id, tasks.c.depends_on).where(tasks.c.depends_on.is_not(None)))
            return {str(i): json.loads(d) for i, d in rows if d}

    def missing(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        with self._db.read() as conn:
            found = {str(r[0]) for r in conn.execute(select(tasks.c.id).where(tasks.c.id.in_(ids)))}
        return [i for i in ids if i not in found]

    def history(self, task_id: str) -> dict[str, list[dict[str, Any]]]:
        with self._db.read() as conn:
            agent_rows = conn.execute(
                select(agents).where(agents.c.task_id == task_id).order_by(agents.c.created_at)
            ).mappings()
            agent_list = [decode_agent(r) for r in agent_rows]
            event_list = [
                dict(r)
                for r in conn.execute(
                    select(events).where(events.c.task_id == task_id).order_by(events.c.created_at)
                ).mappings()
            ]
            queue_list = [
                dict(r)
                for r in conn.execute(
                    select(queue).where(queue.c.task_id == task_id).order_by(queue.c.id)
                ).mappings()
            ]
        for row in event_list:
            row["payload"] = json.loads(row["payload"]) if row.get("payload") else {}
        return {"agents": agent_list, "events": event_list, "queue": queue_list}
