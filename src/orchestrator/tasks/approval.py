"""A person's answer at an approval gate (REQUIRE_APPROVAL): checked here, carried out by the workflow.
The answer becomes an event, so the task's status still changes only in its runner, in the task's order."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from orchestrator.domain.events import EventType
from orchestrator.domain.pr_loop import gate_of
from orchestrator.domain.types import TaskStatus
from orchestrator.errors import Conflict, NotFound
from orchestrator.store.events import EventStore
from orchestrator.store.tasks import TaskRow, TaskStore


class ApprovalService:
    def __init__(self, tasks: TaskStore, events: EventStore, wake: Callable[[], None]) -> None:
        self._tasks = tasks
        self._events = events
        self._wake = wake

    def approve(self, task_id: str) -> TaskRow:
        return self._answer(task_id, EventType.TASK_APPROVED, None)

    def reject(self, task_id: str, reason: str) -> TaskRow:
        return self._answer(task_id, EventType.TASK_REJECTED, reason)

    def _answer(self, task_id: str, type_: EventType, reason: str | None) -> TaskRow:
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} not found")
        gate = gate_of(task["waiting_for"])
        if task["status"] != TaskStatus.AWAITING_APPROVAL or gate is None:
            raise Conflict(f"task {task_id} is {task['status']}, not awaiting approval")
        # One answer per wait: the id names the gate and when the wait began, so a second click is a no-op
        # and the first answer decides.
        since = str(task["waiting_since"] or "")
        answer_id = f"{task_id}.{gate.value}.answer.{since or secrets.token_hex(4)}"
        payload: dict[str, object] = {"gate": gate.value}
        if reason is not None:
            payload["reason"] = reason
        _, created = self._events.create(answer_id, type_.value, task_id, None, payload)
        if not created:
            raise Conflict(f"task {task_id} was answered already at the {gate.value} gate")
        self._wake()
        return task
