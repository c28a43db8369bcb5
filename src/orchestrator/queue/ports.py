"""What the queue processor and the task runners ask of the stores and of the agent manager, and
nothing more. The SQL stores (`orchestrator.store`) and the in-memory ones (`orchestrator.store.memory`)
both fit, so the queue's logic is tested without a server or a file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from orchestrator.agents.announcer import EndListener
from orchestrator.agents.requests import SpawnRequest
from orchestrator.domain.queue_rules import QueueSettings
from orchestrator.domain.types import AgentStatus, TaskStatus
from orchestrator.store.queue import Claimed

Row = dict[str, Any]


class QueuePort(Protocol):
    def settings(self) -> QueueSettings: ...

    def pause(self, reason: str) -> None: ...

    def claim_next(self, instance_id: str, new_agent_id: Callable[[], str]) -> Claimed | None: ...

    def finish(self, item_id: int, ok: bool, error: str | None) -> bool: ...

    def requeue(
        self,
        item_id: int,
        owner: str | None,
        reason: str,
        retry_at: str | None = None,
        *,
        unless_started: bool = False,
    ) -> bool: ...

    def park(self, item_id: int, retry_at: str, reason: str) -> bool: ...

    def next_due_in(self) -> float | None: ...

    def processing(self) -> list[Row]: ...

    def processing_item_of_task(self, task_id: str) -> Row | None: ...

    def item_for_agent(self, agent_id: str) -> Row | None: ...


class TaskPort(Protocol):
    def get(self, task_id: str) -> Row | None: ...

    def move(self, task_id: str, target: TaskStatus, **fields: Any) -> bool: ...

    def update(self, task_id: str, fields: Mapping[str, Any], status: TaskStatus | None) -> bool: ...


class AgentPort(Protocol):
    def get(self, agent_id: str) -> Row | None: ...

    def last_of_task(self, task_id: str) -> Row | None: ...

    def count_for_task(self, task_id: str, status: AgentStatus) -> int: ...


class EventPort(Protocol):
    def create(
        self, event_id: str, type_: str, task_id: str | None, agent_id: str | None, payload: Mapping[str, Any]
    ) -> tuple[Row, bool]: ...


class Spawner(Protocol):
    """The agent manager as the direct runner sees it."""

    async def spawn(self, req: SpawnRequest) -> Row: ...

    def on_end(self, listener: EndListener) -> None: ...
