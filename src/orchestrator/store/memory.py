"""In-memory stores for the queue processor and the task runners: the same rules as the SQL stores
for the methods of `queue.ports` (claim order by priority then age, dependencies, per-repo limits,
pause, retry times, parking), with rows as plain dicts and no webhooks. For tests, after
procrastinate's InMemoryConnector: one shared state, `reset()` empties it, the rows are public."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from orchestrator.clock import utc_now
from orchestrator.domain.lifecycles import AGENTS, QUEUE_ITEMS, TASKS, Lifecycle
from orchestrator.domain.queue_rules import (
    QueueSettings,
    busy_repositories,
    choose_next,
    dependency_state,
    has_room,
    repositories_of,
    settings_from_rows,
    takes_the_last_slot,
)
from orchestrator.domain.types import AgentStatus, QueueItemStatus, TaskStatus
from orchestrator.store.queue import (
    ACTIVE_ITEM,
    DONE_ITEM,
    PAUSED_BY_REQUEST,
    Claimed,
    QueueConflict,
    QueueNotFound,
)

Row = dict[str, Any]
S = TypeVar("S", bound=StrEnum)


def move(lifecycle: Lifecycle[S], row: Row, to: S, **fields: Any) -> bool:
    """The in-memory twin of store/moves.py: the row changes only as its lifecycle's table allows."""
    current = lifecycle.parse(row["status"])
    if current is None or not lifecycle.may_move(current, to):
        return False
    row.update(fields)
    row["status"] = to.value
    return True


_TASK_DEFAULTS: Row = {
    "description": None,
    "repo": None,
    "repos": [],
    "execution_plan": None,
    "assigned_agent_id": None,
    "priority": 0,
    "error": None,
    "branch": None,
    "pr_number": None,
    "pr_url": None,
    "parent_task_id": None,
    "review_rounds": 0,
    "workflow_step": None,
    "budget": None,
    "depends_on": [],
    "waiting_for": None,
    "waiting_since": None,
    "head_sha": None,
}


@dataclass
class MemoryState:
    tasks: dict[str, Row] = field(default_factory=dict)
    items: dict[int, Row] = field(default_factory=dict)
    agents: dict[str, Row] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    item_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def move_task(self, task_id: str, target: TaskStatus, **fields: Any) -> bool:
        task = self.tasks.get(task_id)
        return task is not None and move(TASKS, task, target, **fields, updated_at=utc_now())


@dataclass(frozen=True)
class _Candidate:
    id: int
    position: int
    priority: int
    ready: bool


class MemoryTaskStore:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def create(self, row: Mapping[str, Any]) -> Row | None:
        if row["id"] in self._s.tasks:
            return None
        now = utc_now()
        self._s.tasks[row["id"]] = {
            **_TASK_DEFAULTS,
            "status": TASKS.initial.value,
            "created_at": now,
            "updated_at": now,
            **row,
        }
        return self.get(row["id"])

    def get(self, task_id: str) -> Row | None:
        task = self._s.tasks.get(task_id)
        return dict(task) if task is not None else None

    def move(self, task_id: str, target: TaskStatus, **fields: Any) -> bool:
        return self._s.move_task(task_id, target, **fields)

    def update(self, task_id: str, fields: Mapping[str, Any], status: TaskStatus | None) -> bool:
        if status is not None:
            if not self._s.move_task(task_id, status, **fields):
                return False
            for item_id in [
                i["id"] for i in self._s.items.values() if _is(i, task_id, QueueItemStatus.QUEUED)
            ]:
                del self._s.items[item_id]
        elif fields and task_id in self._s.tasks:
            self._s.tasks[task_id].update(fields, updated_at=utc_now())
        return True


class MemoryAgentStore:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def insert(self, row: Mapping[str, Any]) -> Row:
        now = utc_now()
        self._s.agents[row["id"]] = {
            "metadata": {},
            "error": None,
            "session_id": None,
            "config_dir": None,
            "workspace": None,
            "created_at": now,
            "updated_at": now,
            **row,
            "status": AGENTS.initial.value,
        }
        return dict(self._s.agents[row["id"]])

    def move(self, agent_id: str, target: AgentStatus, *, owner: str | None = None, **fields: Any) -> bool:
        agent = self._s.agents.get(agent_id)
        if agent is None or (owner is not None and agent.get("instance_id") != owner):
            return False
        return move(AGENTS, agent, target, **fields, updated_at=utc_now())

    def update_fields(self, agent_id: str, **fields: Any) -> None:
        if "status" in fields:
            raise ValueError("an agent's status changes by move()")
        self._s.agents[agent_id].update(fields, updated_at=utc_now())

    def get(self, agent_id: str) -> Row | None:
        agent = self._s.agents.get(agent_id)
        return dict(agent) if agent is not None else None

    def last_of_task(self, task_id: str) -> Row | None:
        of_task = [a for a in self._s.agents.values() if a.get("task_id") == task_id]
        return dict(max(of_task, key=lambda a: a["created_at"])) if of_task else None

    def count_for_task(self, task_id: str, status: AgentStatus) -> int:
        return sum(
            1 for a in self._s.agents.values() if a.get("task_id") == task_id and a["status"] == status
        )


class MemoryQueueStore:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    def settings(self) -> QueueSettings:
        return settings_from_rows(self._s.settings)

    def set_setting(self, key: str, value: str) -> QueueSettings:
        was_paused = self.settings().paused
        self._s.settings[key] = value
        if key == "paused" and value == "true" and not was_paused:
            self._s.settings["pause_reason"] = PAUSED_BY_REQUEST
        if key == "paused" and value == "false":
            self._s.settings.pop("pause_reason", None)
            self._s.settings.pop("parked_until", None)
            for item in self._queued():
                item["retry_at"] = None
        return self.settings()

    def pause(self, reason: str) -> None:
        self._s.settings.update(paused="true", pause_reason=reason)

    def add(self, task_id: str) -> Row:
        task = self._s.tasks.get(task_id)
        if task is None:
            raise QueueNotFound(f"task {task_id!r} not found")
        if any(i["task_id"] == task_id and i["status"] in ACTIVE_ITEM for i in self._s.items.values()):
            raise QueueConflict(f"task {task_id} is already in the queue")
        status = task["status"]
        if not self._s.move_task(task_id, TaskStatus.QUEUED):
            raise QueueConflict(f"task {task_id} is {status}: it cannot be queued")
        item_id = next(self._s.item_ids)
        self._s.items[item_id] = {
            "id": item_id,
            "task_id": task_id,
            "position": max((i["position"] for i in self._s.items.values()), default=0) + 1,
            "status": QUEUE_ITEMS.initial.value,
            "queued_at": utc_now(),
            "completed_at": None,
            "started_at": None,
            "agent_id": None,
            "instance_id": None,
            "error": None,
            "retry_at": None,
            "blocked_reason": None,
        }
        return dict(self._s.items[item_id])

    def remove(self, task_id: str) -> None:
        found = [i for i in self._s.items.values() if i["task_id"] == task_id and i["status"] in ACTIVE_ITEM]
        if not found:
            raise QueueNotFound(f"task {task_id!r} is not in the queue")
        if found[0]["status"] == QueueItemStatus.PROCESSING.value:
            raise QueueConflict(f"task {task_id} is being processed: kill its agent instead")
        del self._s.items[found[0]["id"]]
        self._s.move_task(task_id, TaskStatus.PENDING)

    def claim_next(self, instance_id: str, new_agent_id: Callable[[], str]) -> Claimed | None:
        settings = self.settings()
        now = utc_now()
        processing = self.processing()
        busy = busy_repositories([self._repositories(item["task_id"]) for item in processing])
        candidates = [self._candidate(item, settings, now, busy) for item in self._queued()]
        chosen = choose_next(settings, len(processing), candidates)
        if chosen is None:
            return None
        item = self._s.items[chosen.id]
        agent_id = str(new_agent_id())
        move(
            QUEUE_ITEMS,
            item,
            QueueItemStatus.PROCESSING,
            started_at=utc_now(),
            agent_id=agent_id,
            instance_id=instance_id,
        )
        self._s.move_task(item["task_id"], TaskStatus.ASSIGNED, assigned_agent_id=agent_id)
        last_slot = takes_the_last_slot(settings, len(processing))
        return Claimed(item["id"], item["task_id"], item["position"], agent_id, last_slot)

    def _repositories(self, task_id: str) -> frozenset[str]:
        task = self._s.tasks[task_id]
        return repositories_of(task.get("repo"), task.get("repos"))

    def _candidate(self, item: Row, settings: QueueSettings, now: str, busy: dict[str, int]) -> _Candidate:
        task = self._s.tasks[item["task_id"]]
        deps = {
            d: (self._s.tasks[d]["status"] if d in self._s.tasks else None) for d in task["depends_on"] or []
        }
        ready, why = dependency_state(deps)
        item["blocked_reason"] = why
        room = has_room(self._repositories(item["task_id"]), busy, settings.max_concurrent_per_repo)
        due = item["retry_at"] is None or item["retry_at"] <= now
        return _Candidate(item["id"], item["position"], int(task["priority"]), ready and room and due)

    def finish(self, item_id: int, ok: bool, error: str | None) -> bool:
        item = self._s.items.get(item_id)
        if item is None or item["status"] != QueueItemStatus.PROCESSING.value:
            return False
        status = QueueItemStatus.COMPLETED if ok else QueueItemStatus.FAILED
        move(QUEUE_ITEMS, item, status, completed_at=utc_now(), error=error)
        target = TaskStatus.COMPLETED if ok else TaskStatus.FAILED
        self._s.move_task(item["task_id"], target, error=error if not ok else None)
        return True

    def requeue(
        self,
        item_id: int,
        owner: str | None,
        reason: str,
        retry_at: str | None = None,
        *,
        unless_started: bool = False,
    ) -> bool:
        item = self._s.items.get(item_id)
        if item is None or item["instance_id"] != owner:
            return False
        if unless_started and item["agent_id"] in self._s.agents:
            return False
        return self._back_to_queue(item, retry_at, reason)

    def park(self, item_id: int, retry_at: str, reason: str) -> bool:
        item = self._s.items.get(item_id)
        return item is not None and self._back_to_queue(item, retry_at, reason)

    def _back_to_queue(self, item: Row, retry_at: str | None, reason: str) -> bool:
        if item["status"] != QueueItemStatus.PROCESSING.value:
            return False
        move(
            QUEUE_ITEMS,
            item,
            QueueItemStatus.QUEUED,
            agent_id=None,
            instance_id=None,
            started_at=None,
            retry_at=retry_at,
            error=reason,
        )
        self._s.move_task(item["task_id"], TaskStatus.QUEUED, assigned_agent_id=None)
        return True

    def next_due_in(self) -> float | None:
        times = [i["retry_at"] for i in self._queued() if i["retry_at"]]
        if not times:
            return None
        due = datetime.fromisoformat(min(times).replace("Z", "+00:00"))
        return max(0.0, (due - datetime.now(UTC)).total_seconds())

    def processing(self) -> list[Row]:
        return [dict(i) for i in self._s.items.values() if i["status"] == QueueItemStatus.PROCESSING.value]

    def processing_item_of_task(self, task_id: str) -> Row | None:
        found = [i for i in self._s.items.values() if _is(i, task_id, QueueItemStatus.PROCESSING)]
        return dict(found[0]) if found else None

    def item_for_agent(self, agent_id: str) -> Row | None:
        found = [
            i
            for i in self._s.items.values()
            if i["agent_id"] == agent_id and i["status"] == QueueItemStatus.PROCESSING.value
        ]
        return dict(found[0]) if found else None

    def items(self, *, completed_limit: int = 50) -> tuple[list[Row], list[Row]]:
        def shown(item: Row) -> Row:
            task = self._s.tasks.get(item["task_id"])
            return {**item, "title": task["title"] if task is not None else None}

        rows = self._s.items.values()
        active = sorted(
            (i for i in rows if i["status"] in ACTIVE_ITEM), key=lambda i: (i["position"], i["id"])
        )
        done = sorted(
            (i for i in rows if i["status"] in DONE_ITEM), key=lambda i: (i["completed_at"], i["id"])
        )
        return [shown(i) for i in active], [shown(i) for i in reversed(done)][:completed_limit]

    def _queued(self) -> list[Row]:
        return [i for i in self._s.items.values() if i["status"] == QueueItemStatus.QUEUED.value]


def _is(item: Row, task_id: str, status: QueueItemStatus) -> bool:
    return bool(item["task_id"] == task_id and item["status"] == status.value)


class MemoryStore:
    """The three stores over one state."""

    def __init__(self) -> None:
        self.state = MemoryState()
        self.tasks = MemoryTaskStore(self.state)
        self.queue = MemoryQueueStore(self.state)
        self.agents = MemoryAgentStore(self.state)

    def reset(self) -> None:
        fresh = MemoryState()
        for name in ("tasks", "items", "agents", "settings", "item_ids"):
            setattr(self.state, name, getattr(fresh, name))
