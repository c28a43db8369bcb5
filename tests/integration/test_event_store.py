"""Event sequence numbers on a real store: unique and in creation order, also with writers racing on
PostgreSQL (run again on PostgreSQL by scripts/test)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from orchestrator.domain.events import RetryPolicy
from orchestrator.store.db import Database
from orchestrator.store.events import EventStore
from orchestrator.workflow.processor import EventProcessor
from tests.conftest import TEST_PG
from tests.support.postgres import new_database


def _url(tmp_path: Path) -> str:
    return new_database(TEST_PG) if TEST_PG else f"sqlite:///{tmp_path / 'e.db'}"


def test_writers_racing_never_share_a_seq(tmp_path: Path) -> None:
    url = _url(tmp_path)
    first = Database(url)
    first.migrate()
    databases = [Database(url) for _ in range(6)]
    stores = [EventStore(db) for db in databases]
    errors: list[BaseException] = []

    def write(n: int, store: EventStore) -> None:
        try:
            for i in range(20):
                store.create(f"w{n}-{i}", "task.assigned", None, None, {"i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n, s)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for db in databases:
        db.dispose()
    assert not errors, errors[:3]
    with first.read() as conn:
        seqs = [int(r[0]) for r in conn.exec_driver_sql("SELECT seq FROM events ORDER BY created_at, seq")]
    first.dispose()
    assert len(seqs) == 120
    assert sorted(seqs) == list(range(1, 121))


def test_a_handler_whose_event_was_released_meanwhile_cannot_settle_it(tmp_path: Path) -> None:
    db = Database(_url(tmp_path))
    db.migrate()
    store = EventStore(db)
    store.create("e1", "task.assigned", None, None, {})
    claimed = store.claim_next("stale", lambda _: None)
    assert claimed is not None and claimed["id"] == "e1"
    store.release("e1")  # another instance took this one for dead
    assert store.fail("e1", "boom") is False
    assert store.retry_later("e1", "boom", 5.0) is False
    event = store.get("e1")
    assert event is not None and (event["status"], event["error"]) == ("pending", None)

    class FailingWorkflow:
        """Stands for the workflow: its handling of the event fails for good."""

        failed_tasks: list[str] = []

        async def handle(self, event: dict[str, Any]) -> str:
            raise ValueError("the handler broke")

        def fail_task_of(self, event: dict[str, Any], reason: str) -> None:
            self.failed_tasks.append(reason)

    stale = store.claim_next("stale", lambda _: None)
    assert stale is not None
    store.release("e1")
    workflow = FailingWorkflow()
    processor = EventProcessor(store, "stale", RetryPolicy(max_attempts=1))
    asyncio.run(processor._process(workflow, stale))  # type: ignore[arg-type]
    db.dispose()
    assert workflow.failed_tasks == [], "a stale handler failed the task of an event it no longer held"
