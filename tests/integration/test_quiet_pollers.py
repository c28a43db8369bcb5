"""The background pollers that skip their work while nothing changed still see every change: the
webhook deliverer's look at the store, and the EVENT_DIR inbox's scan."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from orchestrator.store.db import Database
from orchestrator.store.events import EventStore
from orchestrator.store.outbox import enqueue
from orchestrator.store.webhooks import WebhookStore
from orchestrator.workflow.inbox import Inbox


def _db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'q.db'}")
    db.migrate()
    return db


def test_the_store_has_work_while_an_event_or_a_pending_delivery_waits(tmp_path: Path) -> None:
    db = _db(tmp_path)
    store = WebhookStore(db)
    assert not store.has_work()
    store.create("h1", "http://127.0.0.1:9/", ["task.created"], "s" * 16)
    assert not store.has_work()  # a webhook alone is nothing to send

    def event() -> None:
        with db.write() as conn:
            enqueue(conn, "task.created", {"task_id": "t1"})

    event()
    event()
    assert store.has_work()  # events to expand
    assert store.expand() == 2
    assert store.has_work()  # deliveries pending
    first, second = store.claim_due("me", lease_seconds=30, lapse_seconds=10)
    assert store.has_work()  # leased, still pending
    assert store.record(first["id"], "me", ok=True, code=200, error=None, retry_in=None)
    assert store.has_work()
    assert store.record(second["id"], "me", ok=False, code=500, error="HTTP 500", retry_in=None)
    assert not store.has_work()  # one delivered, one failed for good

    event()
    store.expand()
    (third,) = store.claim_due("me", lease_seconds=30, lapse_seconds=10)
    assert store.record(third["id"], "me", ok=False, code=500, error="HTTP 500", retry_in=600)
    assert store.claim_due("me", lease_seconds=30, lapse_seconds=10) == []
    assert store.has_work()  # due again only in ten minutes, yet pending


def test_the_inbox_ingests_files_that_come_after_quiet_spells(tmp_path: Path) -> None:
    db = _db(tmp_path)
    events = EventStore(db)
    folder = tmp_path / "events"
    inbox = Inbox(folder, events, lambda: None, poll_seconds=0.05)

    async def scenario() -> list[str]:
        runner = asyncio.create_task(inbox.run())
        try:
            ingested = []
            # no folder yet; then files one after another, at once and after the folder's time has settled
            for n, pause in enumerate((0.3, 0.0, 1.5, 0.0, 0.02)):
                await asyncio.sleep(pause)
                folder.mkdir(exist_ok=True)
                (folder / f"e{n}.json").write_text(json.dumps({"type": "audit.requested"}))
                deadline = time.monotonic() + 10
                while inbox.ingested <= n:
                    assert time.monotonic() < deadline, f"file {n} not ingested"
                    await asyncio.sleep(0.01)
                ingested.append(f"inbox-e{n}")
            # a writer that puts the folder's modification time back after adding a file hides nothing
            await asyncio.sleep(1.5)
            before = folder.stat()
            (folder / "hidden.json").write_text(json.dumps({"type": "audit.requested"}))
            os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))
            deadline = time.monotonic() + 10
            while inbox.ingested <= 5:
                assert time.monotonic() < deadline, "a file behind a forged modification time"
                await asyncio.sleep(0.01)
            return [*ingested, "inbox-hidden"]
        finally:
            runner.cancel()

    for event_id in asyncio.run(scenario()):
        assert events.get(event_id) is not None, event_id
