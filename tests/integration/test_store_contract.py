"""The in-memory stores keep the SQL stores' rules: one scenario, run on each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.clock import iso_at
from orchestrator.domain.types import AgentStatus, TaskStatus
from orchestrator.store.agents import AgentStore
from orchestrator.store.db import Database
from orchestrator.store.memory import MemoryAgentStore, MemoryQueueStore, MemoryStore, MemoryTaskStore
from orchestrator.store.queue import QueueConflict, QueueNotFound, QueueStore
from orchestrator.store.tasks import TaskStore
from tests.conftest import TEST_PG
from tests.support.postgres import new_database

Stores = tuple[TaskStore | MemoryTaskStore, QueueStore | MemoryQueueStore, AgentStore | MemoryAgentStore]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "memory":
        memory = MemoryStore()
        yield memory.tasks, memory.queue, memory.agents
        return
    if request.param == "postgresql" and not TEST_PG:
        pytest.skip("ORCHESTRATOR_TEST_PG is not set")
    db = Database(
        new_database(TEST_PG) if request.param == "postgresql" else f"sqlite:///{tmp_path / 'c.db'}"
    )
    db.migrate()
    yield TaskStore(db), QueueStore(db), AgentStore(db)
    db.dispose()


def _status(tasks: TaskStore | MemoryTaskStore, task_id: str) -> Any:
    task = tasks.get(task_id)
    assert task is not None
    return task["status"]


def test_claims_follow_priority_age_dependencies_repo_limits_and_parking(stores: Stores) -> None:
    tasks, queue, _ = stores
    tasks.create({"id": "a", "title": "a"})
    tasks.create({"id": "b", "title": "b", "priority": 2, "repo": "o/r"})
    tasks.create({"id": "c", "title": "c", "depends_on": ["a"]})
    tasks.create({"id": "d", "title": "d", "priority": 1, "repo": "o/r"})
    tasks.create({"id": "e", "title": "e", "depends_on": ["gone"]})
    for task_id in "abcde":
        queue.add(task_id)
    with pytest.raises(QueueConflict):
        queue.add("a")
    with pytest.raises(QueueNotFound):
        queue.add("nobody")
    queue.set_setting("max_concurrent", "3")
    queue.set_setting("max_concurrent_per_repo", "1")
    ids = iter(f"coding-{n}" for n in range(100))

    def claim() -> str | None:
        claimed = queue.claim_next("me", lambda: next(ids))
        return claimed.task_id if claimed is not None else None

    assert [claim(), claim(), claim()] == ["b", "a", None]
    a = tasks.get("a")
    assert a is not None and (a["status"], a["assigned_agent_id"]) == ("assigned", "coding-1")
    active, _ = queue.items()
    assert {i["task_id"]: i["blocked_reason"] for i in active if i["status"] == "queued"} == {
        "c": None,
        "d": None,
        "e": "dependency gone failed or is gone",
    }

    a_item = queue.processing_item_of_task("a")
    assert a_item is not None and queue.item_for_agent("coding-1") == a_item
    assert queue.finish(a_item["id"], True, None) and not queue.finish(a_item["id"], True, None)
    assert _status(tasks, "a") == TaskStatus.COMPLETED
    assert claim() == "c", "d waits for room in o/r"

    b_item = queue.processing_item_of_task("b")
    assert b_item is not None
    later = iso_at(10**10)
    assert queue.park(b_item["id"], later, "rate limited")
    assert _status(tasks, "b") == TaskStatus.QUEUED
    assert claim() == "d", "a parked item holds itself, not the queue"
    due = queue.next_due_in()
    assert due is not None and due > 1000
    d_item = queue.processing_item_of_task("d")
    assert d_item is not None and queue.finish(d_item["id"], False, "boom")
    d = tasks.get("d")
    assert d is not None and (d["status"], d["error"]) == ("failed", "boom")
    assert claim() is None, "b waits for its reset"
    queue.set_setting("paused", "false")
    assert queue.next_due_in() is None, "resuming the queue ends any parking"
    assert claim() == "b"

    b_item = queue.processing_item_of_task("b")
    assert b_item is not None
    assert not queue.requeue(b_item["id"], "someone-else", "not theirs")
    assert queue.requeue(b_item["id"], "me", "waiting to start: no CLI", later)
    assert claim() is None, "b waits for its retry time"

    assert tasks.update("e", {}, TaskStatus.PENDING), "a queued task moved elsewhere leaves the queue"
    active, done = queue.items()
    assert [(i["task_id"], i["status"]) for i in active] == [("b", "queued"), ("c", "processing")]
    assert [(i["task_id"], i["status"], i["title"]) for i in done] == [
        ("d", "failed", "d"),
        ("a", "completed", "a"),
    ]
    assert [i["task_id"] for i in queue.processing()] == ["c"]

    with pytest.raises(QueueConflict):
        queue.remove("c")
    queue.remove("b")
    assert _status(tasks, "b") == TaskStatus.PENDING
    with pytest.raises(QueueNotFound):
        queue.remove("b")
    queue.pause("task d failed: boom")
    settings = queue.settings()
    assert settings.paused and settings.pause_reason == "task d failed: boom"
    queue.set_setting("paused", "false")
    assert queue.settings().pause_reason is None
    assert not tasks.move("a", TaskStatus.FAILED), "a completed task stays completed"


def test_a_tasks_agents_are_counted_and_the_last_one_found(stores: Stores) -> None:
    tasks, _, agents = stores
    tasks.create({"id": "t", "title": "t"})
    for n, status in enumerate([AgentStatus.RATE_LIMITED, AgentStatus.COMPLETED]):
        agents.insert(
            {
                "id": f"coding-{n}",
                "task_id": "t",
                "agent_type": "coding",
                "prompt": "p",
                "timeout_seconds": 60.0,
                "max_turns": 5,
                "runtime": "host",
                "session_id": f"s{n}",
                "created_at": f"2026-01-0{n + 1}T00:00:00.000Z",
            }
        )
        assert agents.move(f"coding-{n}", AgentStatus.RUNNING) and agents.move(f"coding-{n}", status)
    assert agents.count_for_task("t", AgentStatus.RATE_LIMITED) == 1
    assert agents.count_for_task("t", AgentStatus.FAILED) == 0
    last = agents.last_of_task("t")
    assert last is not None and (last["id"], last["session_id"], last["metadata"]) == ("coding-1", "s1", {})
    assert agents.last_of_task("other") is None
    got = agents.get("coding-0")
    assert got is not None and got["status"] == "rate_limited"


def test_the_per_repository_limit_counts_every_repository_of_a_task(stores: Stores) -> None:
    tasks, queue, _ = stores
    tasks.create({"id": "a", "title": "a", "repo": "api", "repos": ["api", "shared"]})
    tasks.create({"id": "b", "title": "b", "repo": "web", "repos": ["web", "shared"]})
    tasks.create({"id": "c", "title": "c", "repo": "docs", "repos": ["docs"]})
    for task_id in ("a", "b", "c"):
        queue.add(task_id)
    queue.set_setting("max_concurrent", "3")
    queue.set_setting("max_concurrent_per_repo", "1")
    first = queue.claim_next("me", lambda: "coding-1")
    second = queue.claim_next("me", lambda: "coding-2")
    assert first is not None and second is not None
    # b works in `shared` too, which a holds: c, in a repository of its own, goes first
    assert (first.task_id, second.task_id) == ("a", "c")
    assert queue.claim_next("me", lambda: "coding-3") is None
    # below max_concurrent: the processor asks again after each start
    assert not first.last_slot and not second.last_slot
    assert queue.finish(first.id, True, None)
    third = queue.claim_next("me", lambda: "coding-3")
    assert third is not None and third.task_id == "b"


def test_the_claim_that_takes_the_last_slot_says_so(stores: Stores) -> None:
    # the processor then waits for an end instead of claiming again for nothing
    tasks, queue, _ = stores
    for task_id in "abc":
        tasks.create({"id": task_id, "title": task_id})
        queue.add(task_id)
    queue.set_setting("max_concurrent", "2")
    ids = iter(f"coding-{n}" for n in range(10))
    first = queue.claim_next("me", lambda: next(ids))
    second = queue.claim_next("me", lambda: next(ids))
    assert first is not None and second is not None
    assert (first.last_slot, second.last_slot) == (False, True)
    assert queue.claim_next("me", lambda: next(ids)) is None
    assert queue.finish(first.id, True, None)
    third = queue.claim_next("me", lambda: next(ids))
    assert third is not None and third.last_slot
