"""The queue's claim and recovery rules on a real SQLite store, including random sequences; the race of
claimers on two stores also on PostgreSQL (run again there by scripts/test)."""

from __future__ import annotations

import itertools
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from orchestrator.domain.types import TaskStatus
from orchestrator.store.agents import AgentStore, ClaimLost
from orchestrator.store.db import Database
from orchestrator.store.memory import MemoryQueueStore, MemoryStore, MemoryTaskStore
from orchestrator.store.queue import Claimed, QueueConflict, QueueNotFound, QueueStore
from orchestrator.store.tasks import TaskStore
from tests.conftest import TEST_PG
from tests.support.postgres import new_database

_ids = itertools.count()


def _db(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    db.migrate()
    return db


def _agent_ids() -> str:
    return f"coding-{next(_ids):08x}"


def test_claim_takes_items_in_order_and_never_past_the_limit(tmp_path: Path) -> None:
    db = _db(tmp_path / "q.db")
    tasks, queue = TaskStore(db), QueueStore(db)
    for i in range(4):
        tasks.create({"id": f"t{i}", "title": str(i)})
        queue.add(f"t{i}")
    queue.set_setting("max_concurrent", "2")
    first = queue.claim_next("me", _agent_ids)
    second = queue.claim_next("me", _agent_ids)
    assert first is not None and second is not None
    assert (first.task_id, second.task_id) == ("t0", "t1")
    assert queue.claim_next("me", _agent_ids) is None
    assert tasks.get("t0")["status"] == TaskStatus.ASSIGNED  # type: ignore[index]
    assert queue.finish(first.id, True, None)
    assert not queue.finish(first.id, True, None)
    third = queue.claim_next("me", _agent_ids)
    assert third is not None and third.task_id == "t2"


def test_two_stores_on_one_file_never_claim_the_same_item(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    db_a, db_b = _db(path), _db(path)
    tasks = TaskStore(db_a)
    qa, qb = QueueStore(db_a), QueueStore(db_b)
    qa.set_setting("max_concurrent", "100")
    for i in range(30):
        tasks.create({"id": f"t{i}", "title": str(i)})
        qa.add(f"t{i}")
    taken = []
    for _ in range(20):
        for q in (qa, qb):
            claimed = q.claim_next("x", _agent_ids)
            if claimed is not None:
                taken.append(claimed.task_id)
    assert sorted(taken) == sorted(f"t{i}" for i in range(30))


def test_claimers_racing_on_two_stores_take_each_item_once_and_never_run_past_the_limit(
    tmp_path: Path,
) -> None:
    """Two stores on one database (as two instances have), four threads each, every thread claiming,
    holding its item a moment and finishing it, until all items are done."""
    items, limit, per_store = 60, 3, 4
    url = new_database(TEST_PG) if TEST_PG else f"sqlite:///{tmp_path / 'q.db'}"
    setup = Database(url)
    setup.migrate()
    tasks = TaskStore(setup)
    for i in range(items):
        tasks.create({"id": f"t{i}", "title": str(i)})
        QueueStore(setup).add(f"t{i}")
    QueueStore(setup).set_setting("max_concurrent", str(limit))
    databases = [Database(url), Database(url)]

    lock = threading.Lock()
    claims: list[tuple[int, str, str]] = []
    holding, peak, finished = 0, 0, 0
    over: list[int] = []
    errors: list[BaseException] = []
    deadline = time.monotonic() + 90

    def claimer(n: int, db: Database) -> None:
        nonlocal holding, peak, finished
        rng = random.Random(n)
        queue = QueueStore(db)
        try:
            while finished < items and time.monotonic() < deadline:
                claimed = queue.claim_next(f"instance-{n % 2}", _agent_ids)
                if claimed is None:
                    time.sleep(rng.uniform(0, 0.003))
                    continue
                # held from after its claim returned to before its finish began: inside the span in which
                # the store counts it as processing, so `holding` never counts more than the store does
                with lock:
                    claims.append((claimed.id, claimed.task_id, claimed.agent_id))
                    holding += 1
                    peak = max(peak, holding)
                with db.read() as conn:  # the store's own count at this moment
                    processing = conn.exec_driver_sql(
                        "SELECT COUNT(*) FROM queue WHERE status = 'processing'"
                    ).scalar_one()
                if processing > limit:
                    over.append(processing)
                time.sleep(rng.uniform(0.01, 0.04))
                with lock:
                    holding -= 1
                assert queue.finish(claimed.id, True, None), f"item {claimed.id} finished twice"
                with lock:
                    finished += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(n, databases[n % 2])) for n in range(2 * per_store)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in databases:
        db.dispose()

    assert not errors, errors[:3]
    assert finished == items, f"{finished} of {items} items done before the deadline"
    assert sorted(task for _, task, _ in claims) == sorted(f"t{i}" for i in range(items))
    assert len({item for item, _, _ in claims}) == items
    assert len({agent for _, _, agent in claims}) == items
    assert over == [], f"the store counted {max(over)} processing items at once, more than {limit}"
    assert peak <= limit, f"{peak} items held at once, more than {limit}"
    assert peak == limit, "the claimers never held the limit at once: no race was run"
    active, done = QueueStore(setup).items(completed_limit=items)
    assert active == []
    assert sorted(i["task_id"] for i in done) == sorted(f"t{i}" for i in range(items))
    assert {tasks.get(f"t{i}")["status"] for i in range(items)} == {TaskStatus.COMPLETED}  # type: ignore[index]
    setup.dispose()


def test_an_item_claimed_before_a_crash_goes_back_to_the_queue(tmp_path: Path) -> None:
    from orchestrator.agents.log_bus import LogBus
    from orchestrator.agents.log_writer import LogWriter
    from orchestrator.agents.manager import AgentManager
    from orchestrator.domain.redact import Redactor
    from orchestrator.queue.processor import QueueProcessor
    from orchestrator.queue.runners import DirectRunner
    from orchestrator.runtimes.host import HostRuntime
    from orchestrator.settings import Settings
    from orchestrator.store.agents import AgentStore
    from orchestrator.store.logs import LogStore

    db = _db(tmp_path / "q.db")
    tasks, queue, agents = TaskStore(db), QueueStore(db), AgentStore(db)
    tasks.create({"id": "t0", "title": "x"})
    queue.add("t0")
    claimed = queue.claim_next("dead-instance", _agent_ids)
    assert claimed is not None
    settings = Settings(ORCHESTRATOR_DATA_DIR=tmp_path)
    bus = LogBus()
    manager = AgentManager(
        settings,
        agents,
        HostRuntime(),
        LogWriter(LogStore(db), bus, flush_interval=0.01, max_lines=10, owner="me"),
        bus,
        Redactor(),
        "me",
    )
    processor = QueueProcessor(queue, DirectRunner(queue, tasks, agents, manager), "me", enabled=True)
    assert processor.recover(lambda owner: owner != "me") == {"requeued": 1, "ended": 0, "following": 0}
    assert tasks.get("t0")["status"] == TaskStatus.QUEUED  # type: ignore[index]
    again = queue.claim_next("me", _agent_ids)
    assert again is not None and again.task_id == "t0" and again.agent_id != claimed.agent_id


class QueueMachine(RuleBasedStateMachine):
    """Random add / remove / claim / finish / setting changes against the real store."""

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.tasks, self.queue = self.stores()
        self.known: list[str] = []
        self.queued: list[str] = []
        self.processing: dict[int, str] = {}
        self.finished: dict[str, bool] = {}
        self.max_concurrent = 1
        self.paused = False

    def stores(self) -> tuple[TaskStore | MemoryTaskStore, QueueStore | MemoryQueueStore]:
        db = _db(Path(self._dir.name) / "q.db")
        return TaskStore(db), QueueStore(db)

    def teardown(self) -> None:
        self._dir.cleanup()

    @rule()
    def new_task(self) -> None:
        task_id = f"t{len(self.known)}"
        self.tasks.create({"id": task_id, "title": task_id})
        self.known.append(task_id)

    @precondition(lambda self: self.known)
    @rule(data=st.data())
    def add(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.known))
        busy = task_id in self.queued or task_id in self.processing.values()
        ok = not busy and self.finished.get(task_id) is not True
        try:
            self.queue.add(task_id)
            assert ok, f"{task_id} was added while queued, running or completed"
            self.queued.append(task_id)
        except QueueConflict:
            assert not ok

    @precondition(lambda self: self.known)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.known))
        try:
            self.queue.remove(task_id)
            assert task_id in self.queued
            self.queued.remove(task_id)
        except QueueNotFound:
            assert task_id not in self.queued
        except QueueConflict:
            assert task_id in self.processing.values()

    @rule()
    def claim(self) -> None:
        claimed = self.queue.claim_next("me", _agent_ids)
        startable = not self.paused and len(self.processing) < self.max_concurrent and self.queued
        if claimed is None:
            assert not startable
            return
        assert startable
        assert claimed.task_id == self.queued[0], "items start in queue order"
        assert claimed.task_id not in self.processing.values(), "a task started twice at once"
        self.queued.pop(0)
        self.processing[claimed.id] = claimed.task_id

    @precondition(lambda self: self.processing)
    @rule(data=st.data(), ok=st.booleans())
    def finish(self, data: st.DataObject, ok: bool) -> None:
        item_id = data.draw(st.sampled_from(sorted(self.processing)))
        assert self.queue.finish(item_id, ok, None if ok else "failed")
        self.finished[self.processing.pop(item_id)] = ok

    @rule(n=st.integers(1, 4))
    def set_max(self, n: int) -> None:
        self.queue.set_setting("max_concurrent", str(n))
        self.max_concurrent = n

    @rule(paused=st.booleans())
    def set_paused(self, paused: bool) -> None:
        self.queue.set_setting("paused", "true" if paused else "false")
        self.paused = paused

    @invariant()
    def store_agrees(self) -> None:
        active, _ = self.queue.items()
        assert [i["task_id"] for i in active if i["status"] == "queued"] == self.queued
        assert sorted(i["id"] for i in active if i["status"] == "processing") == sorted(self.processing)


QueueMachine.TestCase.settings = hsettings(max_examples=40, stateful_step_count=30, deadline=None)
TestQueueMachine = QueueMachine.TestCase


class MemoryQueueMachine(QueueMachine):
    """The same random sequences against the in-memory stores the unit tests use."""

    def stores(self) -> tuple[TaskStore | MemoryTaskStore, QueueStore | MemoryQueueStore]:
        memory = MemoryStore()
        return memory.tasks, memory.queue


MemoryQueueMachine.TestCase.settings = hsettings(max_examples=60, stateful_step_count=30, deadline=None)
TestMemoryQueueMachine = MemoryQueueMachine.TestCase


def test_a_runnable_item_behind_hundreds_of_waiting_ones_starts(tmp_path: Path) -> None:
    db = _db(tmp_path / "q.db")
    tasks, queue = TaskStore(db), QueueStore(db)
    tasks.create({"id": "never", "title": "never queued"})
    for i in range(450):
        tasks.create({"id": f"wait{i}", "title": str(i), "depends_on": ["never"], "priority": i % 3})
        queue.add(f"wait{i}")
    tasks.create({"id": "free", "title": "runnable", "priority": 0})
    queue.add("free")
    claimed = queue.claim_next("me", _agent_ids)
    assert claimed is not None and claimed.task_id == "free"
    assert queue.claim_next("me", _agent_ids) is None


def test_the_highest_priority_item_starts_wherever_it_stands(tmp_path: Path) -> None:
    db = _db(tmp_path / "q.db")
    tasks, queue = TaskStore(db), QueueStore(db)
    queue.set_setting("max_concurrent", "2")
    for i in range(250):
        tasks.create({"id": f"low{i}", "title": str(i)})
        queue.add(f"low{i}")
    tasks.create({"id": "urgent", "title": "urgent", "priority": 9})
    queue.add("urgent")
    first, second = queue.claim_next("me", _agent_ids), queue.claim_next("me", _agent_ids)
    assert first is not None and second is not None
    assert (first.task_id, second.task_id) == ("urgent", "low0")


@pytest.fixture
def claimed_item(tmp_path: Path) -> Iterator[tuple[QueueStore, AgentStore, Claimed]]:
    url = new_database(TEST_PG) if TEST_PG else f"sqlite:///{tmp_path / 'q.db'}"
    db = Database(url)
    db.migrate()
    TaskStore(db).create({"id": "t", "title": "t"})
    queue = QueueStore(db)
    queue.add("t")
    claimed = queue.claim_next("frozen", _agent_ids)
    assert claimed is not None
    yield queue, AgentStore(db), claimed
    db.dispose()


def _agent_row(claimed: Claimed) -> dict[str, object]:
    return {
        "id": claimed.agent_id,
        "task_id": claimed.task_id,
        "agent_type": "coding",
        "prompt": "p",
        "instance_id": "frozen",
        "timeout_seconds": 60,
        "max_turns": 5,
        "runtime": "host",
    }


def test_an_instance_that_wakes_after_its_item_was_requeued_starts_no_agent_for_it(
    claimed_item: tuple[QueueStore, AgentStore, Claimed],
) -> None:
    # the frozen instance had claimed the item; the others took it for dead and queued the item again
    queue, agents, claimed = claimed_item
    assert queue.requeue(claimed.id, "frozen", "its instance stopped", unless_started=True)
    with pytest.raises(ClaimLost):
        agents.insert(_agent_row(claimed), for_queue_item=claimed.id)
    assert agents.get(claimed.agent_id) is None
    assert queue.claim_next("alive", _agent_ids) is not None


def test_an_item_whose_agent_came_to_exist_is_not_requeued_as_never_started(
    claimed_item: tuple[QueueStore, AgentStore, Claimed],
) -> None:
    # the frozen instance woke and created its agent before the others' recovery reached the item
    queue, agents, claimed = claimed_item
    agents.insert(_agent_row(claimed), for_queue_item=claimed.id)
    assert not queue.requeue(claimed.id, "frozen", "its instance stopped", unless_started=True)
    assert queue.claim_next("alive", _agent_ids) is None, "the item is still the frozen instance's"
