"""The lifecycles against the real store: random moves of agents, tasks, queue items, events and webhook
deliveries through the stores' own methods and the one guarded write, checked against
domain/lifecycles.py. A move succeeds iff the table allows it from the row's current status (and its
other guards hold), a terminal status never changes, and each move's webhook is stored exactly once. On
SQLite, or on the tests' PostgreSQL when ORCHESTRATOR_TEST_PG is set."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, select

from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.events import EventStatus
from orchestrator.domain.lifecycles import (
    AGENTS,
    EVENTS,
    QUEUE_ITEMS,
    TASKS,
    WEBHOOK_DELIVERIES,
    Lifecycle,
)
from orchestrator.domain.types import (
    TERMINAL_AGENT_STATUSES,
    AgentStatus,
    DeliveryStatus,
    QueueItemStatus,
    TaskStatus,
)
from orchestrator.store.agents import AgentStore
from orchestrator.store.db import Database
from orchestrator.store.events import EventStore
from orchestrator.store.moves import move
from orchestrator.store.outbox import enqueue
from orchestrator.store.queue import QueueStore
from orchestrator.store.tables import (
    agents,
    events,
    queue,
    tasks,
    webhook_deliveries,
    webhook_events,
    webhooks,
)
from orchestrator.store.tasks import TaskStore
from orchestrator.store.webhooks import WebhookStore
from tests.conftest import TEST_PG
from tests.support.postgres import new_database

MACHINE_SETTINGS = hsettings(
    max_examples=30,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
TOPICS = [
    *(f"agent.{s.value}" for s in AgentStatus),
    "agent.budget_exceeded",
    "task.completed",
    "task.failed",
    "task.awaiting_approval",
]
PAST = "2000-01-01T00:00:00.000Z"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(new_database(TEST_PG) if TEST_PG else f"sqlite:///{tmp_path / 'lifecycles.db'}")
    database.migrate()
    yield database
    database.dispose()


def _webhook_topic_counts(db: Database) -> Counter[tuple[str, str]]:
    """(topic, id of the row moved) of every webhook event stored."""
    with db.read() as conn:
        rows = conn.execute(select(webhook_events.c.event_type, webhook_events.c.payload)).all()
    counts: Counter[tuple[str, str]] = Counter()
    for topic, payload in rows:
        data = json.loads(payload)["data"]
        counts[(str(topic), str(data.get("agent_id") or data.get("task_id")))] += 1
    return counts


class LifecycleMachine(RuleBasedStateMachine):
    """What every machine shares: an empty store with a webhook for every topic a move announces, the
    model of each row's status, and the invariants."""

    lifecycle: Lifecycle[Any]

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        with db.write() as conn:
            for table in (webhook_events, webhook_deliveries, webhooks, queue, events, agents, tasks):
                conn.execute(delete(table))
        WebhookStore(db).create("hook", "http://127.0.0.1:9/hook", TOPICS, "secret")
        self.status: dict[Any, StrEnum] = {}
        self.ended: dict[Any, StrEnum] = {}
        self.announced: Counter[tuple[str, str]] = Counter()

    def expect_move(self, row_id: Any, target: StrEnum, moved: bool, *, guards_hold: bool = True) -> None:
        """Checks `moved` against the table and updates the model; counts the webhook the move owes."""
        current = self.status[row_id]
        assert moved == (self.lifecycle.may_move(current, target) and guards_hold), (
            f"{self.lifecycle.kind} {row_id}: {current} -> {target} gave {moved}"
        )
        if moved:
            topic = self.lifecycle.effect(current, target).webhook
            if topic is not None:
                self.announced[(topic, str(row_id))] += 1
            self.status[row_id] = target
            if target in self.lifecycle.terminal:
                self.ended.setdefault(row_id, target)

    def stored_statuses(self) -> dict[Any, str]:
        raise NotImplementedError

    @invariant()
    def the_store_holds_the_model(self) -> None:
        stored = self.stored_statuses()
        assert stored == {k: v.value for k, v in self.status.items()}
        for row_id, end in self.ended.items():
            assert stored[row_id] == end.value, f"{row_id} left its terminal status {end}"

    @invariant()
    def each_move_announced_once(self) -> None:
        assert _webhook_topic_counts(self.db) == self.announced


class AgentMachine(LifecycleMachine):
    lifecycle = AGENTS

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.store = AgentStore(db)
        self.ids = itertools.count()

    def stored_statuses(self) -> dict[Any, str]:
        with self.db.read() as conn:
            return {str(i): str(s) for i, s in conn.execute(select(agents.c.id, agents.c.status))}

    @rule()
    def spawn(self) -> None:
        agent_id = f"coding-{next(self.ids):08x}"
        row = self.store.insert(
            {
                "id": agent_id,
                "agent_type": "coding",
                "prompt": "p",
                "instance_id": "me",
                "timeout_seconds": 60,
                "max_turns": 5,
                "runtime": "host",
            }
        )
        assert row["status"] == AGENTS.initial
        self.status[agent_id] = AGENTS.initial

    @precondition(lambda self: self.status)
    @rule(
        data=st.data(),
        to=st.sampled_from(AgentStatus),
        owner=st.sampled_from([None, "me", "other"]),
        error=st.sampled_from([None, "boom", "budget_exceeded: cost"]),
        reason=st.sampled_from([None, EndReason.ERROR, EndReason.BUDGET_EXCEEDED]),
    )
    def move(
        self,
        data: st.DataObject,
        to: AgentStatus,
        owner: str | None,
        error: str | None,
        reason: EndReason | None,
    ) -> None:
        agent_id = data.draw(st.sampled_from(sorted(self.status)))
        moved = self.store.move(agent_id, to, owner=owner, error=error, end_reason=reason)
        self.expect_move(agent_id, to, moved, guards_hold=owner in (None, "me"))
        # the budget's webhook follows the typed reason, never the error text an agent could print
        if moved and to.is_terminal and reason == EndReason.BUDGET_EXCEEDED:
            self.announced[("agent.budget_exceeded", agent_id)] += 1
        stored = self.store.get(agent_id)
        assert stored is not None
        if moved:
            assert stored["error"] == error, "a move writes its fields"


class TaskMachine(LifecycleMachine):
    lifecycle = TASKS

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.store = TaskStore(db)

    def stored_statuses(self) -> dict[Any, str]:
        with self.db.read() as conn:
            return {str(i): str(s) for i, s in conn.execute(select(tasks.c.id, tasks.c.status))}

    @rule()
    def create(self) -> None:
        task_id = f"t{len(self.status)}"
        row = self.store.create({"id": task_id, "title": task_id})
        assert row is not None and row["status"] == TASKS.initial
        self.status[task_id] = TASKS.initial

    @precondition(lambda self: self.status)
    @rule(data=st.data(), to=st.sampled_from(TaskStatus), error=st.sampled_from([None, "why"]))
    def move(self, data: st.DataObject, to: TaskStatus, error: str | None) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.status)))
        self.expect_move(task_id, to, self.store.move(task_id, to, error=error))

    @precondition(lambda self: self.status)
    @rule(data=st.data(), to=st.sampled_from([s for s in TaskStatus if s != TaskStatus.QUEUED]))
    def update(self, data: st.DataObject, to: TaskStatus) -> None:
        """The API's PATCH: fields and a status in one."""
        task_id = data.draw(st.sampled_from(sorted(self.status)))
        self.expect_move(task_id, to, self.store.update(task_id, {"title": "renamed"}, to))


class QueueItemMachine(LifecycleMachine):
    """Queue items moved by the queue's own methods and by the bare move; their tasks follow."""

    lifecycle = QUEUE_ITEMS

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.tasks, self.queue = TaskStore(db), QueueStore(db)
        self.queue.set_setting("max_concurrent", "1000")
        self.task_of: dict[int, str] = {}
        self.task_status: dict[str, TaskStatus] = {}
        self.owner: dict[int, str | None] = {}
        self.agent_ids = (f"coding-{n:08x}" for n in itertools.count())

    def stored_statuses(self) -> dict[Any, str]:
        with self.db.read() as conn:
            return {int(i): str(s) for i, s in conn.execute(select(queue.c.id, queue.c.status))}

    def follow_task(self, item_id: int, target: TaskStatus, moved: bool) -> None:
        """The item's task moves with it where its own table allows."""
        task_id = self.task_of[item_id]
        current = self.task_status[task_id]
        if moved and TASKS.may_move(current, target):
            topic = TASKS.effect(current, target).webhook
            if topic is not None:
                self.announced[(topic, task_id)] += 1
            self.task_status[task_id] = target

    @invariant()
    def tasks_follow_their_items(self) -> None:
        with self.db.read() as conn:
            stored = {str(i): str(s) for i, s in conn.execute(select(tasks.c.id, tasks.c.status))}
        assert stored == {k: v.value for k, v in self.task_status.items()}

    @rule()
    def add(self) -> None:
        task_id = f"t{len(self.task_status)}"
        self.tasks.create({"id": task_id, "title": task_id})
        item = self.queue.add(task_id)
        assert item["status"] == QUEUE_ITEMS.initial
        self.status[item["id"]] = QUEUE_ITEMS.initial
        self.task_of[item["id"]] = task_id
        self.task_status[task_id] = TaskStatus.QUEUED
        self.owner[item["id"]] = None

    @rule()
    def claim(self) -> None:
        queued = sorted(i for i, s in self.status.items() if s == QueueItemStatus.QUEUED)
        claimed = self.queue.claim_next("me", lambda: next(self.agent_ids))
        if not queued:
            assert claimed is None
            return
        assert claimed is not None and claimed.id == queued[0], "the oldest queued item starts"
        self.expect_move(claimed.id, QueueItemStatus.PROCESSING, True)
        self.owner[claimed.id] = "me"
        self.follow_task(claimed.id, TaskStatus.ASSIGNED, True)

    @precondition(lambda self: self.status)
    @rule(data=st.data(), ok=st.booleans())
    def finish(self, data: st.DataObject, ok: bool) -> None:
        item_id = data.draw(st.sampled_from(sorted(self.status)))
        target = QueueItemStatus.COMPLETED if ok else QueueItemStatus.FAILED
        moved = self.queue.finish(item_id, ok, None if ok else "failed")
        self.expect_move(item_id, target, moved)
        self.follow_task(item_id, TaskStatus.COMPLETED if ok else TaskStatus.FAILED, moved)

    @precondition(lambda self: self.status)
    @rule(data=st.data(), owner=st.sampled_from([None, "me", "other"]))
    def requeue(self, data: st.DataObject, owner: str | None) -> None:
        item_id = data.draw(st.sampled_from(sorted(self.status)))
        moved = self.queue.requeue(item_id, owner, "again")
        self.expect_move(item_id, QueueItemStatus.QUEUED, moved, guards_hold=self.owner[item_id] == owner)
        if moved:
            self.owner[item_id] = None
        self.follow_task(item_id, TaskStatus.QUEUED, moved)

    @precondition(lambda self: self.status)
    @rule(data=st.data())
    def park(self, data: st.DataObject) -> None:
        item_id = data.draw(st.sampled_from(sorted(self.status)))
        moved = self.queue.park(item_id, PAST, "rate limited")
        self.expect_move(item_id, QueueItemStatus.QUEUED, moved)
        if moved:
            self.owner[item_id] = None
        self.follow_task(item_id, TaskStatus.QUEUED, moved)

    @precondition(lambda self: self.status)
    @rule(data=st.data(), to=st.sampled_from(QueueItemStatus))
    def bare_move(self, data: st.DataObject, to: QueueItemStatus) -> None:
        item_id = data.draw(st.sampled_from(sorted(self.status)))
        with self.db.write() as conn:
            moved = move(conn, QUEUE_ITEMS, item_id, to)
        self.expect_move(item_id, to, moved)


class EventMachine(LifecycleMachine):
    """Events moved by the event processor's calls, the API's and the bare move."""

    lifecycle = EVENTS

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.store = EventStore(db)
        self.order: list[str] = []
        self.attempts: dict[str, int] = {}

    def stored_statuses(self) -> dict[Any, str]:
        with self.db.read() as conn:
            return {str(i): str(s) for i, s in conn.execute(select(events.c.id, events.c.status))}

    @invariant()
    def each_claim_counts_an_attempt(self) -> None:
        with self.db.read() as conn:
            stored = {str(i): int(n) for i, n in conn.execute(select(events.c.id, events.c.attempts))}
        assert stored == self.attempts

    def pick(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.order))

    @rule()
    def create(self) -> None:
        event_id = f"e{len(self.order)}"
        row, created = self.store.create(event_id, "task.assigned", None, None, {})
        assert created and row["status"] == EVENTS.initial
        self.order.append(event_id)
        self.status[event_id] = EVENTS.initial
        self.attempts[event_id] = 0

    @rule()
    def claim(self) -> None:
        pending = [e for e in self.order if self.status[e] == EventStatus.PENDING]
        claimed = self.store.claim_next("me", lambda _: None)
        if not pending:
            assert claimed is None
            return
        assert claimed is not None and claimed["id"] == pending[0], "the oldest pending event first"
        self.expect_move(claimed["id"], EventStatus.PROCESSING, True)
        self.attempts[claimed["id"]] += 1

    @precondition(lambda self: self.order)
    @rule(data=st.data(), only_open=st.booleans())
    def mark_processed(self, data: st.DataObject, only_open: bool) -> None:
        event_id = self.pick(data)
        was = self.status[event_id]
        moved = self.store.mark_processed(event_id, only_open=only_open)
        self.expect_move(
            event_id, EventStatus.PROCESSED, moved, guards_hold=not only_open or was != EventStatus.FAILED
        )

    @precondition(lambda self: self.order)
    @rule(data=st.data())
    def retry_later(self, data: st.DataObject) -> None:
        event_id = self.pick(data)
        was = self.status[event_id]
        self.store.retry_later(event_id, "again", 0)
        self.expect_move(event_id, EventStatus.PENDING, self.stored_statuses()[event_id] != was.value)

    @precondition(lambda self: self.order)
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        event_id = self.pick(data)
        was = self.status[event_id]
        self.store.fail(event_id, "no more")
        self.expect_move(event_id, EventStatus.FAILED, self.stored_statuses()[event_id] != was.value)

    @precondition(lambda self: self.order)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        event_id = self.pick(data)
        was = self.status[event_id]
        self.store.release(event_id)
        self.expect_move(event_id, EventStatus.PENDING, self.stored_statuses()[event_id] != was.value)

    @precondition(lambda self: self.order)
    @rule(data=st.data(), to=st.sampled_from(EventStatus))
    def bare_move(self, data: st.DataObject, to: EventStatus) -> None:
        event_id = self.pick(data)
        with self.db.write() as conn:
            moved = move(conn, EVENTS, event_id, to)
        self.expect_move(event_id, to, moved)


class DeliveryMachine(LifecycleMachine):
    """Webhook deliveries leased by two instances and ended by their attempts' outcomes."""

    lifecycle = WEBHOOK_DELIVERIES

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.store = WebhookStore(db)
        self.lease: dict[int, str | None] = {}

    def stored_statuses(self) -> dict[Any, str]:
        with self.db.read() as conn:
            rows = conn.execute(select(webhook_deliveries.c.id, webhook_deliveries.c.status))
            return {int(i): str(s) for i, s in rows}

    @rule()
    def announce(self) -> None:
        with self.db.write() as conn:
            enqueue(conn, "task.completed", {"task_id": "t"})
        assert self.store.expand() == 1
        for delivery_id in set(self.stored_statuses()) - set(self.status):
            self.status[delivery_id] = WEBHOOK_DELIVERIES.initial
            self.lease[delivery_id] = None

    @rule(owner=st.sampled_from(["a", "b"]))
    def claim(self, owner: str) -> None:
        claimed = {int(d["id"]) for d in self.store.claim_due(owner, 60, 60)}
        free = {i for i, s in self.status.items() if s == DeliveryStatus.PENDING and self.lease[i] is None}
        assert claimed == free, "every due delivery without a lease, and only those"
        for delivery_id in claimed:
            self.lease[delivery_id] = owner

    @precondition(lambda self: self.status)
    @rule(
        data=st.data(),
        owner=st.sampled_from(["a", "b"]),
        outcome=st.sampled_from(["delivered", "retry", "failed"]),
    )
    def record(self, data: st.DataObject, owner: str, outcome: str) -> None:
        delivery_id = data.draw(st.sampled_from(sorted(self.status)))
        moved = self.store.record(
            delivery_id,
            owner,
            ok=outcome == "delivered",
            code=200 if outcome == "delivered" else 500,
            error=None if outcome == "delivered" else "HTTP 500",
            retry_in=0 if outcome == "retry" else None,
        )
        to = DeliveryStatus.PENDING if outcome == "retry" else DeliveryStatus(outcome)
        self.expect_move(delivery_id, to, moved, guards_hold=self.lease[delivery_id] == owner)
        if moved:
            self.lease[delivery_id] = None

    @precondition(lambda self: self.status)
    @rule(data=st.data(), to=st.sampled_from(DeliveryStatus))
    def bare_move(self, data: st.DataObject, to: DeliveryStatus) -> None:
        delivery_id = data.draw(st.sampled_from(sorted(self.status)))
        with self.db.write() as conn:
            moved = move(conn, WEBHOOK_DELIVERIES, delivery_id, to)
        self.expect_move(delivery_id, to, moved)


@pytest.mark.parametrize(
    "machine", [AgentMachine, TaskMachine, QueueItemMachine, EventMachine, DeliveryMachine]
)
def test_random_moves_follow_the_table(db: Database, machine: type[LifecycleMachine]) -> None:
    run_state_machine_as_test(lambda: machine(db), settings=MACHINE_SETTINGS)


def test_the_tables_end_where_the_service_expects() -> None:
    assert AGENTS.terminal == TERMINAL_AGENT_STATUSES
    assert TASKS.terminal == {TaskStatus.COMPLETED}
    assert QUEUE_ITEMS.terminal == {QueueItemStatus.COMPLETED, QueueItemStatus.FAILED}
    assert EVENTS.terminal == {EventStatus.PROCESSED}
    assert WEBHOOK_DELIVERIES.terminal == {DeliveryStatus.DELIVERED, DeliveryStatus.FAILED}
    for lifecycle in (AGENTS, TASKS, QUEUE_ITEMS, EVENTS, WEBHOOK_DELIVERIES):
        assert lifecycle.initial not in lifecycle.terminal
        reached, todo = {lifecycle.initial}, [lifecycle.initial]
        while todo:
            here = todo.pop()
            for src, dst in lifecycle.moves:
                if src == here and dst not in reached:
                    reached.add(dst)
                    todo.append(dst)
        assert reached == set(lifecycle.statuses), f"{lifecycle.kind}: a status no row can reach"


def test_the_webhooks_moves_announce() -> None:
    def topics(lifecycle: Lifecycle[Any]) -> dict[tuple[str, str], str]:
        return {
            (src.value, dst.value): effect.webhook
            for (src, dst), effect in lifecycle.moves.items()
            if effect.webhook is not None
        }

    assert topics(AGENTS) == {
        (src.value, end.value): f"agent.{end.value}"
        for src in (AgentStatus.STARTING, AgentStatus.RUNNING)
        for end in TERMINAL_AGENT_STATUSES
        if AGENTS.may_move(src, end)
    }
    assert AGENTS.may_move(AgentStatus.RUNNING, AgentStatus.COMPLETED)
    assert not AGENTS.may_move(AgentStatus.STARTING, AgentStatus.COMPLETED)
    assert topics(TASKS) == {
        (src.value, end.value): f"task.{end.value}"
        for end in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.AWAITING_APPROVAL)
        for src in TASKS.sources_for(end)
        if src != end
    }
    assert TASKS.may_move(TaskStatus.COMPLETED, TaskStatus.COMPLETED), "a task may be moved to where it is"
    assert topics(QUEUE_ITEMS) == topics(EVENTS) == topics(WEBHOOK_DELIVERIES) == {}
