"""The queue processor: one loop, woken on add, on an agent's end and on a setting change.

Each start claims an item atomically with its agent id fixed in the same transaction, so a crash
between claim and spawn is recognisable at the next start: an item whose agent never came to be
goes back to the queue; one whose agent exists follows that agent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from orchestrator.agents.manager import AgentError, AgentManager, SpawnRequest
from orchestrator.domain.ids import new_agent_id
from orchestrator.domain.types import AgentStatus, AgentType, TaskStatus
from orchestrator.prompts.context import task_context
from orchestrator.prompts.render import render
from orchestrator.store.agents import AgentRow, AgentStore
from orchestrator.store.queue import Claimed, QueueStore
from orchestrator.store.tasks import TaskStore

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0


class QueueProcessor:
    def __init__(
        self,
        queue: QueueStore,
        tasks: TaskStore,
        agents: AgentStore,
        manager: AgentManager,
        instance_id: str,
        *,
        enabled: bool,
        on_assigned: Callable[[Claimed], None] | None = None,
    ) -> None:
        self._queue = queue
        self._tasks = tasks
        self._agents = agents
        self._manager = manager
        self._instance_id = instance_id
        self._enabled = enabled
        self._on_assigned = on_assigned
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = 0
        manager.on_end(self._agent_ended)

    def wake(self) -> None:
        """Safe from any thread (API routes run in a threadpool)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            if self._enabled:
                await self._start_all_that_fit()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SWEEP_SECONDS)
            self._wake.clear()

    async def _start_all_that_fit(self) -> None:
        while True:
            claimed = await asyncio.to_thread(
                self._queue.claim_next, self._instance_id, lambda: new_agent_id(AgentType.CODING)
            )
            if claimed is None:
                return
            await self._start(claimed)

    async def _start(self, item: Claimed) -> None:
        if self._on_assigned is not None:
            self._on_assigned(item)
            return
        task = self._tasks.get(item.task_id)
        if task is None:
            self._end_item(item.id, item.task_id, ok=False, error="the task was deleted")
            return
        try:
            await self._manager.spawn(
                SpawnRequest(
                    agent_type=AgentType.CODING,
                    prompt=render(AgentType.CODING, task_context(task)),
                    task_id=item.task_id,
                    repo=task.get("repo"),
                    agent_id=item.agent_id,
                )
            )
        except AgentError as exc:
            self._end_item(item.id, item.task_id, ok=False, error=f"could not start its agent: {exc}")
            return
        self._tasks.move(item.task_id, TaskStatus.IN_PROGRESS)
        self.started += 1

    def task_ended(self, task_id: str, ok: bool, error: str | None) -> None:
        """In the event workflow, a queue item ends when its task does."""
        item = self._queue.processing_item_of_task(task_id)
        if item is not None:
            self._end_item(item["id"], task_id, ok=ok, error=error)

    def _agent_ended(self, agent: AgentRow) -> None:
        item = self._queue.item_for_agent(agent["id"])
        if item is None:
            return
        ok = agent["status"] == AgentStatus.COMPLETED.value
        error = (
            None if ok else f"agent {agent['id']} ended {agent['status']}: {agent.get('error') or ''}".strip()
        )
        self._end_item(item["id"], item["task_id"], ok=ok, error=error)

    def _end_item(self, item_id: int, task_id: str, *, ok: bool, error: str | None) -> None:
        if not self._queue.finish(item_id, ok, error):
            return
        if not ok and self._queue.settings().stop_on_failure:
            self._queue.pause(f"task {task_id} failed: {error}")
            log.warning("queue paused: task %s failed (stop_on_failure)", task_id)
        self.wake()

    def recover(self) -> dict[str, int]:
        """Items left processing by a stopped service: follow their agent, or queue them again."""
        counts = {"requeued": 0, "ended": 0, "following": 0}
        for item in self._queue.processing():
            if self._on_assigned is not None:
                task = self._tasks.get(item["task_id"])
                if task is None or task["status"] in (TaskStatus.COMPLETED, TaskStatus.FAILED):
                    ok = task is not None and task["status"] == TaskStatus.COMPLETED
                    self._end_item(
                        item["id"], item["task_id"], ok=ok, error=None if ok else (task or {}).get("error")
                    )
                    counts["ended"] += 1
                else:
                    counts["following"] += 1
                continue
            agent = self._agents.get(item["agent_id"]) if item["agent_id"] else None
            if agent is None:
                self._queue.requeue(item["id"], "the service stopped before its agent started")
                counts["requeued"] += 1
            elif AgentStatus(agent["status"]).is_terminal:
                self._agent_ended(agent)
                counts["ended"] += 1
            else:
                counts["following"] += 1
        self.wake()
        return counts
