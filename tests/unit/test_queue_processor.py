"""The queue processor and the direct runner on the in-memory stores, with a fake agent manager at
the process boundary: no server, no file, no process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import orchestrator
from orchestrator.agents.announcer import EndListener
from orchestrator.agents.errors import AgentError
from orchestrator.agents.requests import SpawnRequest
from orchestrator.clock import iso_at, parse_iso
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.types import AgentStatus, TaskStatus
from orchestrator.queue.processor import QueueProcessor
from orchestrator.queue.runners import DirectRunner
from orchestrator.store.memory import MemoryAgentStore, MemoryStore

Row = dict[str, Any]


class FakeAgents:
    """Stands for the agent manager: a spawn records a running agent, or raises the refusal it is
    given; `end` ends an agent and tells the listeners, as the manager does when a process exits."""

    def __init__(self, agents: MemoryAgentStore) -> None:
        self._agents = agents
        self._listeners: list[EndListener] = []
        self.refusal: AgentError | None = None
        self.spawned: list[SpawnRequest] = []

    def on_end(self, listener: EndListener) -> None:
        self._listeners.append(listener)

    async def spawn(self, req: SpawnRequest) -> Row:
        if self.refusal is not None:
            raise self.refusal
        assert req.agent_id is not None
        self.spawned.append(req)
        self._agents.insert(
            {
                "id": req.agent_id,
                "task_id": req.task_id,
                "agent_type": req.agent_type.value,
                "session_id": f"session-of-{req.agent_id}",
                "workspace": f"/ws/{req.task_id}",
            }
        )
        assert self._agents.move(req.agent_id, AgentStatus.RUNNING)
        row = self._agents.get(req.agent_id)
        assert row is not None
        return row

    def end(
        self,
        agent_id: str,
        status: AgentStatus,
        error: str | None = None,
        end_reason: EndReason | None = None,
        **metadata: Any,
    ) -> None:
        assert self._agents.move(agent_id, status, error=error, end_reason=end_reason, metadata=metadata)
        row = self._agents.get(agent_id)
        assert row is not None
        for listener in self._listeners:
            listener(row)


class Rig:
    def __init__(self, *, backoff: float = 60.0) -> None:
        self.store = MemoryStore()
        self.tasks, self.queue = self.store.tasks, self.store.queue
        self.manager = FakeAgents(self.store.agents)
        self.runner = DirectRunner(
            self.queue, self.tasks, self.store.agents, self.manager, rate_limit_backoff_seconds=backoff
        )
        self.processor = QueueProcessor(self.queue, self.runner, "me", enabled=True)

    def queued(self, task_id: str, **fields: Any) -> None:
        self.tasks.create({"id": task_id, "title": task_id, **fields})
        self.queue.add(task_id)

    def run_once(self) -> None:
        asyncio.run(self.processor.start_all_that_fit())

    def status(self, task_id: str) -> str:
        task = self.tasks.get(task_id)
        assert task is not None
        return str(task["status"])

    def item(self, task_id: str) -> Row:
        active, done = self.queue.items()
        return next(i for i in [*active, *done] if i["task_id"] == task_id)

    def agent_of(self, task_id: str) -> str:
        agent_id = self.item(task_id)["agent_id"]
        assert agent_id is not None
        return str(agent_id)

    def make_due(self, task_id: str) -> None:
        """What the passing of time does to a waiting item."""
        self.store.state.items[self.item(task_id)["id"]]["retry_at"] = iso_at(time.time() - 1)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_a_runnable_task_queued_behind_205_blocked_ones_starts(rig: Rig) -> None:
    rig.tasks.create({"id": "never", "title": "never queued"})
    for i in range(205):
        rig.queued(f"blocked{i}", depends_on=["never"])
    rig.queued("free")
    rig.run_once()
    assert [r.task_id for r in rig.manager.spawned] == ["free"]
    assert rig.status("free") == TaskStatus.IN_PROGRESS
    assert rig.status("blocked204") == TaskStatus.QUEUED


def test_a_failed_dependency_is_named_on_the_waiting_item(rig: Rig) -> None:
    rig.tasks.create({"id": "dep", "title": "dep"})
    rig.tasks.move("dep", TaskStatus.FAILED)
    rig.queued("after", depends_on=["dep"])
    rig.run_once()
    assert rig.manager.spawned == []
    assert rig.item("after")["blocked_reason"] == "dependency dep failed or is gone"


def test_a_transient_refusal_leaves_the_item_queued_with_a_backoff_and_the_queue_running(rig: Rig) -> None:
    rig.manager.refusal = AgentError("claude CLI not found at 'claude'", 503)
    rig.queued("t")
    rig.run_once()
    item = rig.item("t")
    assert item["status"] == "queued" and rig.status("t") == TaskStatus.QUEUED
    assert item["error"] == "waiting to start: claude CLI not found at 'claude'"
    assert item["retry_at"] is not None and parse_iso(item["retry_at"]).timestamp() > time.time()
    assert not rig.queue.settings().paused
    rig.run_once()
    assert rig.item("t")["status"] == "queued", "a waiting item started before its retry time"
    rig.manager.refusal = None
    rig.make_due("t")
    rig.run_once()
    assert rig.status("t") == TaskStatus.IN_PROGRESS


def test_each_refusal_waits_longer(rig: Rig) -> None:
    rig.manager.refusal = AgentError("the service is shutting down", 503)
    rig.queued("t")
    waits = []
    for _ in range(3):
        rig.make_due("t")
        before = time.time()
        rig.run_once()
        waits.append(parse_iso(rig.item("t")["retry_at"]).timestamp() - before)
    assert waits[0] < waits[1] < waits[2]


def test_a_refusal_about_the_task_fails_it_and_stops_the_queue(rig: Rig) -> None:
    rig.manager.refusal = AgentError("bad budget", 400)
    rig.queued("t")
    rig.queued("next")
    rig.run_once()
    assert rig.item("t")["status"] == "failed" and rig.status("t") == TaskStatus.FAILED
    settings = rig.queue.settings()
    assert settings.paused and settings.pause_reason == "task t failed: could not start its agent: bad budget"
    assert rig.status("next") == TaskStatus.QUEUED


def test_without_stop_on_failure_the_queue_goes_on_after_a_failed_agent(rig: Rig) -> None:
    rig.queue.set_setting("stop_on_failure", "false")
    rig.queued("t")
    rig.queued("next")
    rig.run_once()
    rig.manager.end(rig.agent_of("t"), AgentStatus.FAILED, "exit 1")
    assert rig.item("t")["error"] == f"agent {rig.agent_of('t')} ended failed: exit 1"
    assert not rig.queue.settings().paused
    rig.run_once()
    assert rig.status("next") == TaskStatus.IN_PROGRESS


def test_a_failed_agent_fails_its_task_once_and_pauses_the_queue(rig: Rig) -> None:
    rig.queued("t")
    rig.queued("next")
    rig.run_once()
    agent = rig.agent_of("t")
    rig.manager.end(agent, AgentStatus.FAILED, "exit 1")
    assert rig.status("t") == TaskStatus.FAILED and rig.item("t")["status"] == "failed"
    assert rig.queue.settings().paused
    rig.run_once()
    assert rig.status("next") == TaskStatus.QUEUED


def test_a_completed_agent_completes_its_task_and_the_next_one_starts(rig: Rig) -> None:
    rig.queued("t")
    rig.queued("next")
    rig.run_once()
    assert rig.status("next") == TaskStatus.QUEUED, "max_concurrent is 1"
    rig.manager.end(rig.agent_of("t"), AgentStatus.COMPLETED)
    assert rig.status("t") == TaskStatus.COMPLETED and rig.item("t")["status"] == "completed"
    rig.run_once()
    assert rig.status("next") == TaskStatus.IN_PROGRESS


def test_a_rate_limited_agent_parks_its_item_alone_then_resumes_its_session(rig: Rig) -> None:
    rig.queued("t")
    rig.queued("other")
    rig.run_once()
    first = rig.agent_of("t")
    reset = time.time() + 120
    rig.manager.end(first, AgentStatus.RATE_LIMITED, "usage limit reached", rate_limit_reset_at=reset)
    item = rig.item("t")
    assert item["status"] == "queued" and item["error"] == "usage limit reached"
    assert rig.status("t") == TaskStatus.QUEUED
    assert abs(parse_iso(item["retry_at"]).timestamp() - reset) < 1
    due = rig.queue.next_due_in()
    assert due is not None and 100 < due <= 120
    rig.run_once()
    assert [s.task_id for s in rig.manager.spawned] == ["t", "other"], "the rest of the queue goes on"
    assert rig.status("t") == TaskStatus.QUEUED, "the parked item waits for its reset"
    rig.manager.end(rig.agent_of("other"), AgentStatus.COMPLETED)
    rig.run_once()
    assert len(rig.manager.spawned) == 2, "the parked item waits for its reset with nothing else to run"
    rig.make_due("t")
    rig.run_once()
    again = rig.manager.spawned[-1]
    assert again.task_id == "t" and again.agent_id != first
    assert (again.resume_session, again.retry_of, again.workspace) == (f"session-of-{first}", first, "/ws/t")


def test_a_far_rate_limit_reset_is_capped_at_a_day(rig: Rig) -> None:
    rig.queued("t")
    rig.run_once()
    rig.manager.end(
        rig.agent_of("t"), AgentStatus.RATE_LIMITED, "limit", rate_limit_reset_at=time.time() + 1e9
    )
    waits = parse_iso(rig.item("t")["retry_at"]).timestamp() - time.time()
    assert 23 * 3600 < waits <= 24 * 3600


def test_a_rate_limit_without_a_reset_time_backs_off_longer_each_time() -> None:
    rig = Rig(backoff=10.0)
    rig.queued("t")
    waits = []
    for _ in range(2):
        rig.run_once()
        rig.manager.end(rig.agent_of("t"), AgentStatus.RATE_LIMITED, "limit")
        waits.append(parse_iso(rig.item("t")["retry_at"]).timestamp() - time.time())
        rig.make_due("t")
    assert 8 < waits[0] <= 10 and 18 < waits[1] <= 20


def test_an_agent_that_never_started_puts_its_item_back(rig: Rig) -> None:
    rig.queued("t")
    rig.run_once()
    rig.manager.end(rig.agent_of("t"), AgentStatus.FAILED, "never started", EndReason.NEVER_STARTED)
    assert rig.item("t")["status"] == "queued" and rig.status("t") == TaskStatus.QUEUED
    assert not rig.queue.settings().paused


def _claimed_by(rig: Rig, owner: str, task_id: str) -> str:
    claimed = rig.queue.claim_next(owner, lambda: f"coding-{task_id}")
    assert claimed is not None and claimed.task_id == task_id
    return claimed.agent_id


def test_recovery_requeues_follows_or_ends_what_a_dead_instance_held() -> None:
    rig = Rig()
    rig.queue.set_setting("max_concurrent", "3")
    for name in ("unstarted", "running", "ended"):
        rig.queued(name)
        agent = _claimed_by(rig, "dead", name)
        if name != "unstarted":
            rig.store.agents.insert({"id": agent, "task_id": name})
            assert rig.store.agents.move(agent, AgentStatus.RUNNING)
    assert rig.store.agents.move("coding-ended", AgentStatus.COMPLETED)
    dead: Callable[[str | None], bool] = lambda owner: owner == "dead"  # noqa: E731
    assert rig.processor.recover(dead) == {"requeued": 1, "ended": 1, "following": 1}
    assert [rig.status(t) for t in ("unstarted", "running", "ended")] == ["queued", "assigned", "completed"]


def test_a_live_instances_item_without_an_agent_yet_is_left_alone(rig: Rig) -> None:
    rig.queued("t")
    _claimed_by(rig, "alive", "t")
    assert rig.processor.recover(lambda owner: False) == {"requeued": 0, "ended": 0, "following": 0}
    assert rig.item("t")["status"] == "processing"


def test_a_runs_end_writes_its_item_and_task_together(rig: Rig) -> None:
    rig.queued("t")
    rig.run_once()
    assert rig.runner.end_task("t", ok=True, error=None)
    assert rig.item("t")["status"] == "completed" and rig.status("t") == TaskStatus.COMPLETED
    assert not rig.runner.end_task("t", ok=False, error="late"), "a completed task does not fail afterwards"
    assert rig.status("t") == TaskStatus.COMPLETED and not rig.queue.settings().paused
    rig.tasks.create({"id": "loose", "title": "driven by events"})
    assert rig.runner.end_task("loose", ok=False, error="verification failed")
    loose = rig.tasks.get("loose")
    assert loose is not None and (loose["status"], loose["error"]) == ("failed", "verification failed")
    assert not rig.queue.settings().paused, "a task without a queue item does not stop the queue"


def test_the_task_mode_is_read_only_where_the_runner_is_chosen() -> None:
    src = Path(orchestrator.__file__).parent
    readers = sorted(
        str(p.relative_to(src)) for p in src.rglob("*.py") if "use_multi_agent_events" in p.read_text()
    )
    assert readers == ["services.py", "settings.py"]


def test_a_run_ending_after_a_person_ended_its_task_follows_the_persons_end(rig: Rig) -> None:
    rig.queued("t")
    rig.run_once()
    assert rig.tasks.update("t", {}, TaskStatus.COMPLETED), "a person marks the running task completed"
    assert not rig.runner.end_task("t", ok=False, error="the run failed afterwards")
    assert rig.status("t") == TaskStatus.COMPLETED
    assert rig.item("t")["status"] == "completed", "the item follows the task, not the stale run"
    assert not rig.queue.settings().paused, "a task shown completed does not stop the queue"
