"""The queue processor: one loop, woken on add, on an agent's end and on a setting change.

Each start claims an item atomically with its agent id fixed in the same transaction, so a crash
between claim and spawn is recognisable at the next start: an item whose agent never came to be
goes back to the queue; one whose agent exists follows that agent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from orchestrator.agents.manager import AgentError, AgentManager, AgentTakenOver, SpawnRequest
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.ids import new_agent_id
from orchestrator.domain.types import AgentStatus, AgentType, TaskStatus
from orchestrator.domain.watchdog import Budget
from orchestrator.prompts.context import task_context
from orchestrator.prompts.render import render
from orchestrator.store.agents import AgentRow, AgentStore
from orchestrator.store.queue import Claimed, QueueStore
from orchestrator.store.tasks import TaskStore

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
REFUSED_RETRY_SECONDS = (1.0, 60.0)
MAX_PARK_SECONDS = 24 * 3600.0


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
        rate_limit_backoff_seconds: float = 60.0,
    ) -> None:
        self._backoff = rate_limit_backoff_seconds
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
        self._refusals: dict[str, int] = {}
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
            due = await asyncio.to_thread(self._queue.next_due_in)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), min(SWEEP_SECONDS, due if due is not None else SWEEP_SECONDS)
                )
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
        earlier = self._agents.last_of_task(item.task_id)
        resume = (
            earlier is not None
            and earlier["status"] in (AgentStatus.RATE_LIMITED.value, AgentStatus.TIMEOUT.value)
            and bool(earlier["session_id"])
        )
        try:
            await self._manager.spawn(
                SpawnRequest(
                    agent_type=AgentType.CODING,
                    prompt=render(AgentType.CODING, task_context(task)),
                    task_id=item.task_id,
                    repo=task.get("repo"),
                    agent_id=item.agent_id,
                    budget=Budget(**task["budget"]) if task.get("budget") else None,
                    resume_session=earlier["session_id"] if resume and earlier else None,
                    config_dir=earlier["config_dir"] if resume and earlier else None,
                    workspace=earlier["workspace"] if resume and earlier else None,
                    retry_of=earlier["id"] if resume and earlier else None,
                )
            )
        except AgentTakenOver:
            return
        except AgentError as exc:
            if exc.status >= 500:
                self._defer(item, str(exc))
                return
            self._end_item(item.id, item.task_id, ok=False, error=f"could not start its agent: {exc}")
            return
        except Exception as exc:  # a bug in one item must not stop the queue for the rest
            log.exception("queue item %s of task %s: the spawn failed", item.id, item.task_id)
            self._end_item(item.id, item.task_id, ok=False, error=f"could not start its agent: {exc!r}")
            return
        self._refusals.pop(item.task_id, None)
        self._tasks.move(item.task_id, TaskStatus.IN_PROGRESS)
        self.started += 1

    def _defer(self, item: Claimed, why: str) -> None:
        """A refusal that says nothing about the task (the CLI or the runtime missing for now, the service
        shutting down): the item waits in the queue with the reason, longer after each refusal."""
        refusals = self._refusals.get(item.task_id, 0) + 1
        self._refusals[item.task_id] = refusals
        first, cap = REFUSED_RETRY_SECONDS
        delay = min(first * 2 ** (refusals - 1), cap)
        retry_at = _iso(time.time() + delay)
        if self._queue.requeue(item.id, self._instance_id, f"waiting to start: {why}", retry_at):
            log.warning("task %s waits %.0f s to start: %s", item.task_id, delay, why)
        self.wake()

    def task_ended(self, task_id: str, ok: bool, error: str | None) -> None:
        """In the event workflow, a queue item ends when its task does."""
        item = self._queue.processing_item_of_task(task_id)
        if item is not None:
            self._end_item(item["id"], task_id, ok=ok, error=error)

    def _agent_ended(self, agent: AgentRow) -> None:
        item = self._queue.item_for_agent(agent["id"])
        if item is None:
            return
        if agent.get("end_reason") == EndReason.NEVER_STARTED:
            if self._queue.requeue(item["id"], item["instance_id"], agent.get("error") or "never started"):
                self.wake()
            return
        if agent["status"] == AgentStatus.RATE_LIMITED.value:
            self._park(item, agent)
            return
        ok = agent["status"] == AgentStatus.COMPLETED.value
        error = (
            None if ok else f"agent {agent['id']} ended {agent['status']}: {agent.get('error') or ''}".strip()
        )
        self._end_item(item["id"], item["task_id"], ok=ok, error=error)

    def _park(self, item: dict[str, Any], agent: AgentRow) -> None:
        """A rate or usage limit is account-wide: the item waits for the reset (or a backoff), and so
        does the whole queue; the next start resumes the same Claude session."""
        reset = agent["metadata"].get("rate_limit_reset_at")
        attempts = self._agents.count_for_task(item["task_id"], AgentStatus.RATE_LIMITED)
        delay = self._backoff * 2 ** max(0, attempts - 1)
        now = time.time()
        # the reset time is read from what the model API or the CLI printed: trusted only within a day
        until = now + min(delay, 3600.0) if reset is None else min(float(reset), now + MAX_PARK_SECONDS)
        retry_at = _iso(until)
        if self._queue.park(item["id"], retry_at, agent.get("error") or "rate limited"):
            log.warning("task %s parked until %s: %s", item["task_id"], retry_at, agent.get("error"))
        self.wake()

    def _end_item(self, item_id: int, task_id: str, *, ok: bool, error: str | None) -> None:
        if not self._queue.finish(item_id, ok, error):
            return
        if not ok and self._queue.settings().stop_on_failure:
            self._queue.pause(f"task {task_id} failed: {error}")
            log.warning("queue paused: task %s failed (stop_on_failure)", task_id)
        self.wake()

    def recover(self, dead: Callable[[str | None], bool]) -> dict[str, int]:
        """Items left processing by a stopped instance: follow their agent, or queue them again."""
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
                if dead(item["instance_id"]) and self._queue.requeue(
                    item["id"], item["instance_id"], "its instance stopped before the agent started"
                ):
                    counts["requeued"] += 1
            elif AgentStatus(agent["status"]).is_terminal:
                self._agent_ended(agent)
                counts["ended"] += 1
            else:
                counts["following"] += 1
        self.wake()
        return counts


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
