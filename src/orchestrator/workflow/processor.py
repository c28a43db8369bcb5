"""The event processor: one loop that claims events in order per task and handles each exactly once.

An event's agent id is fixed when it is claimed; a handler that spawned its agent and then lost
the race with a crash is recognised at the next claim (the agent exists), so no step runs twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from orchestrator.domain.events import RetryPolicy
from orchestrator.store.events import EventRow, EventStore
from orchestrator.workflow.service import Retryable, Workflow

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0


class EventProcessor:
    def __init__(self, events: EventStore, instance_id: str, policy: RetryPolicy) -> None:
        self._events = events
        self._instance_id = instance_id
        self._policy = policy
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.workflow: Workflow | None = None
        self.handled = 0

    def wake(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def recover(self, dead: Callable[[str | None], bool]) -> int:
        """Events a stopped instance was handling go back to pending, their agent id kept."""
        stuck = [e for e in self._events.processing() if dead(e["instance_id"])]
        for event in stuck:
            self._events.release(event["id"])
        if stuck:
            self.wake()
        return len(stuck)

    async def run(self) -> None:
        assert self.workflow is not None
        self._loop = asyncio.get_running_loop()
        workflow = self.workflow
        while True:
            while True:
                event = await asyncio.to_thread(
                    self._events.claim_next, self._instance_id, workflow.agent_id_for
                )
                if event is None:
                    break
                await self._process(workflow, event)
            due = await asyncio.to_thread(self._events.next_due_in)
            # asyncio.timeout, not wait_for: see queue/processor.py (a cancel lost on Python 3.11)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(SWEEP_SECONDS, due if due is not None else SWEEP_SECONDS)):
                    await self._wake.wait()
            self._wake.clear()

    async def _process(self, workflow: Workflow, event: EventRow) -> None:
        try:
            note = await workflow.handle(event)
        except Exception as exc:
            retryable = isinstance(exc, Retryable)
            if not retryable:
                log.exception("handling event %s (%s) failed", event["id"], event["type"])
            reason = f"{type(exc).__name__}: {exc}"
            delay = self._policy.next_delay(event["attempts"])
            if delay is not None:
                if not self._events.retry_later(event["id"], reason, delay):
                    log.warning(
                        "event %s was taken from this instance while it failed: %s", event["id"], reason
                    )
                    return
                log.warning(
                    "event %s failed (attempt %d), retrying in %.1f s: %s",
                    event["id"],
                    event["attempts"],
                    delay,
                    reason,
                )
            elif self._events.fail(event["id"], reason):
                workflow.fail_task_of(event, f"event {event['id']} ({event['type']}) failed: {reason}")
            else:  # released to another instance meanwhile: its handling decides, not this stale one
                log.warning("event %s was taken from this instance while it failed: %s", event["id"], reason)
            return
        self._events.mark_processed(event["id"])
        self.handled += 1
        log.info("event %s (%s) handled: %s", event["id"], event["type"], note)
