"""The rules for a task asked for through the API: its id, its repositories, its dependencies (all known,
no cycle), which fields may change, and when it may go."""

from __future__ import annotations

import secrets
from typing import Any

from orchestrator.domain.queue_rules import find_cycle
from orchestrator.domain.types import TaskStatus
from orchestrator.errors import Conflict, Invalid, NotFound
from orchestrator.models import TaskCreate, TaskUpdate
from orchestrator.store.tasks import TaskRow, TaskStore

_REQUIRED = ("title", "priority")


def with_primary(repo: str | None, repos: list[str] | None) -> tuple[str | None, list[str]]:
    """The primary repository (the one given, else the first listed) and the list, which starts with it."""
    listed = list(dict.fromkeys(repos or []))
    primary = repo or (listed[0] if listed else None)
    if primary and primary not in listed:
        listed.insert(0, primary)
    return primary, listed


class TaskService:
    def __init__(self, tasks: TaskStore) -> None:
        self._tasks = tasks

    def get(self, task_id: str) -> TaskRow:
        row = self._tasks.get(task_id)
        if row is None:
            raise NotFound(f"task {task_id!r} not found")
        return row

    def detail(self, task_id: str) -> dict[str, Any]:
        """The task with its agents and events."""
        return {**self.get(task_id), **self._tasks.history(task_id)}

    def page(self, status: TaskStatus | None, *, limit: int, offset: int) -> tuple[list[TaskRow], int]:
        return self._tasks.page(status, limit=limit, offset=offset)

    def create(self, new: TaskCreate) -> TaskRow:
        repo, repos = with_primary(new.repo, new.repos)
        task_id = new.id or f"task-{secrets.token_hex(4)}"
        depends_on = list(dict.fromkeys(new.depends_on))
        self._check_dependencies(task_id, depends_on)
        row = self._tasks.create(
            {
                "id": task_id,
                "title": new.title,
                "description": new.description,
                "repo": repo,
                "repos": repos,
                "priority": new.priority,
                "depends_on": depends_on,
                "budget": new.budget.model_dump() if new.budget else None,
            }
        )
        if row is None:
            raise Conflict(f"id: a task {task_id!r} exists already")
        return row

    def update(self, task_id: str, change: TaskUpdate) -> TaskRow:
        """Applies the fields `change` sets; a status only as a move the task's lifecycle allows, and
        never to queued (a task enters the queue through the queue)."""
        row = self.get(task_id)
        fields = change.model_dump(exclude_unset=True, exclude={"status"})
        if fields.get("depends_on") is not None:
            fields["depends_on"] = list(dict.fromkeys(fields["depends_on"]))
            self._check_dependencies(task_id, fields["depends_on"])
        if "repo" in fields or "repos" in fields:
            fields["repo"], fields["repos"] = with_primary(
                fields.get("repo", row["repo"]), fields.get("repos", row["repos"])
            )
        for required in _REQUIRED:
            if required in fields and fields[required] is None:
                raise Invalid("may not be null", field=required)
        if change.status == TaskStatus.QUEUED:
            raise Invalid("add the task to the queue with POST /api/queue/add/{task_id}", field="status")
        if change.status == TaskStatus.AWAITING_APPROVAL:
            raise Invalid(
                "a task awaits approval only at a gate of the workflow (REQUIRE_APPROVAL)", field="status"
            )
        if not self._tasks.update(task_id, fields, change.status):
            raise Conflict(f"status: task {task_id} is {row['status']} and cannot become {change.status}")
        return self.get(task_id)

    def delete(self, task_id: str) -> None:
        """Removes the task and its queue items; a Conflict while an agent works on it."""
        self.get(task_id)
        self._tasks.delete(task_id)

    def _check_dependencies(self, task_id: str, depends_on: list[str]) -> None:
        missing = self._tasks.missing([d for d in depends_on if d != task_id])
        if missing:
            raise Invalid(f"no task {', '.join(missing)}", field="depends_on")
        cycle = find_cycle({**self._tasks.dependency_graph(), task_id: depends_on}, task_id)
        if cycle:
            raise Invalid(f"a cycle {' -> '.join(cycle)}", field="depends_on")
