"""The task runner protocol, what a start can come to, and the task writes both runners share."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from orchestrator.domain.types import TaskStatus
from orchestrator.queue.ports import QueuePort, Row, TaskPort
from orchestrator.store.queue import Claimed


@dataclass(frozen=True)
class Started:
    pass


@dataclass(frozen=True)
class Refused:
    """A refusal that says nothing about the task (the CLI or the runtime missing for now, the service
    shutting down): the item waits in the queue."""

    why: str


@dataclass(frozen=True)
class Failed:
    """The task cannot start: its item ends failed."""

    error: str


@dataclass(frozen=True)
class Gone:
    """Another instance took the item over while it was being started: nothing left to do here."""


StartResult = Started | Refused | Failed | Gone
Recovered = Literal["requeued", "ended", "following"] | None
Dead = Callable[[str | None], bool]
Loop = tuple[str, Callable[[], Coroutine[Any, Any, None]]]


class QueueControl(Protocol):
    """What a runner may ask of the queue processor."""

    def end_item(self, item_id: int, task_id: str, *, ok: bool, error: str | None) -> bool: ...

    def wake(self) -> None: ...


class TaskRunner(Protocol):
    def bind(self, queue: QueueControl) -> None: ...

    async def start(self, item: Claimed) -> StartResult: ...

    def recover(self, item: Row, dead: Dead) -> Recovered:
        """A processing item found at start or left by a dead instance: follow, end or requeue it."""
        ...

    def take_over(self, dead: Dead) -> dict[str, int]:
        """What else the runner held for dead instances; counts by kind."""
        ...

    def loops(self) -> list[Loop]:
        """The background loops the runner needs, by name."""
        ...

    def task_started(self, task_id: str, fields: Mapping[str, Any]) -> bool: ...

    def end_task(self, task_id: str, *, ok: bool, error: str | None) -> bool: ...


class TaskWrites:
    """A task's status writes during a run, the same for both runners."""

    def __init__(self, tasks: TaskPort, queue: QueuePort) -> None:
        self._tasks = tasks
        self._queue = queue
        self._control: QueueControl | None = None

    def bind(self, queue: QueueControl) -> None:
        self._control = queue

    @property
    def control(self) -> QueueControl:
        if self._control is None:
            raise RuntimeError("the runner is not bound to a queue processor")
        return self._control

    def task_started(self, task_id: str, fields: Mapping[str, Any]) -> bool:
        return self._tasks.update(task_id, fields, TaskStatus.IN_PROGRESS)

    def end_task(self, task_id: str, *, ok: bool, error: str | None) -> bool:
        """The one place a task's run ends: with its queue item when it has one (item and task in one
        write), else the task alone (a task driven by events without the queue)."""
        item = self._queue.processing_item_of_task(task_id)
        task = self._tasks.get(task_id)
        if task is not None and task["status"] in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            # ended meanwhile by someone else (a person, through the API): the item follows that end
            if item is not None:
                done = task["status"] == TaskStatus.COMPLETED
                self.control.end_item(item["id"], task_id, ok=done, error=None if done else task.get("error"))
            return False
        if item is not None and self.control.end_item(item["id"], task_id, ok=ok, error=error):
            return True
        return self._tasks.move(task_id, TaskStatus.COMPLETED if ok else TaskStatus.FAILED, error=error)
