"""The queue processor: one loop, woken on add, on an agent's end and on a setting change.

Each start claims an item atomically with its agent id fixed in the same transaction, so a crash
between claim and spawn is recognisable at the next start: an item whose agent never came to be
goes back to the queue; one whose agent exists follows that agent. What a claimed item becomes is
the task runner's business (`queue/runners`); the processor claims, defers, and ends items."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from orchestrator.clock import iso_at
from orchestrator.domain.ids import new_agent_id
from orchestrator.domain.types import AgentType
from orchestrator.queue.ports import QueuePort
from orchestrator.queue.runners import Failed, Refused, Started, TaskRunner
from orchestrator.queue.runners.base import Dead
from orchestrator.store.queue import Claimed

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
REFUSED_RETRY_SECONDS = (1.0, 60.0)


class QueueProcessor:
    def __init__(self, queue: QueuePort, runner: TaskRunner, instance_id: str, *, enabled: bool) -> None:
        self._queue = queue
        self._runner = runner
        self._instance_id = instance_id
        self._enabled = enabled
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = 0
        self._refusals: dict[str, int] = {}
        runner.bind(self)

    def wake(self) -> None:
        """Safe from any thread (API routes run in a threadpool)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            full = self._enabled and await self.start_all_that_fit()
            # full: nothing can start before an end or a setting change, each of which wakes this loop
            due = None if full else await asyncio.to_thread(self._queue.next_due_in)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel that comes as the event is
            # set (a queue agent ending at shutdown), and the loop then never ends
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(SWEEP_SECONDS, due if due is not None else SWEEP_SECONDS)):
                    await self._wake.wait()
            self._wake.clear()

    async def start_all_that_fit(self) -> bool:
        """Whether the queue is full now (its last start took the last slot)."""
        while True:
            claimed = await asyncio.to_thread(
                self._queue.claim_next, self._instance_id, lambda: new_agent_id(AgentType.CODING)
            )
            if claimed is None:
                return False
            await self._start(claimed)
            if claimed.last_slot:
                return True

    async def _start(self, item: Claimed) -> None:
        result = await self._runner.start(item)
        if isinstance(result, Started):
            self._refusals.pop(item.task_id, None)
            self.started += 1
        elif isinstance(result, Refused):
            self._defer(item, result.why)
        elif isinstance(result, Failed):
            self.end_item(item.id, item.task_id, ok=False, error=result.error)

    def _defer(self, item: Claimed, why: str) -> None:
        """A refusal that says nothing about the task: the item waits in the queue with the reason,
        longer after each refusal."""
        refusals = self._refusals.get(item.task_id, 0) + 1
        self._refusals[item.task_id] = refusals
        first, cap = REFUSED_RETRY_SECONDS
        delay = min(first * 2 ** (refusals - 1), cap)
        retry_at = iso_at(time.time() + delay)
        if self._queue.requeue(item.id, self._instance_id, f"waiting to start: {why}", retry_at):
            log.warning("task %s waits %.0f s to start: %s", item.task_id, delay, why)
        self.wake()

    def end_item(self, item_id: int, task_id: str, *, ok: bool, error: str | None) -> bool:
        """Ends a processing item and its task in one write; a failure pauses the queue when
        stop_on_failure is set. False if the item had already ended."""
        if not self._queue.finish(item_id, ok, error):
            return False
        if not ok and self._queue.settings().stop_on_failure:
            self._queue.pause(f"task {task_id} failed: {error}")
            log.warning("queue paused: task %s failed (stop_on_failure)", task_id)
        self.wake()
        return True

    def recover(self, dead: Dead) -> dict[str, int]:
        """Items left processing by a stopped instance: the runner follows, ends or requeues each."""
        counts = {"requeued": 0, "ended": 0, "following": 0}
        for item in self._queue.processing():
            outcome = self._runner.recover(item, dead)
            if outcome is not None:
                counts[outcome] += 1
        self.wake()
        return counts
