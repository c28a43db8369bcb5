"""The change feed on a real store: one look per interval for all readers, each change to each reader
once, a reader resumed from its cursor or told to reset."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.live.changes import ChangeFeed, Message, Reader
from orchestrator.store.changes import ChangeStore
from orchestrator.store.db import Database
from orchestrator.store.events import EventStore
from orchestrator.store.queue import QueueStore
from orchestrator.store.tasks import TaskStore
from tests.conftest import TEST_PG
from tests.support.postgres import new_database

INTERVAL = 0.05


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(new_database(TEST_PG) if TEST_PG else f"sqlite:///{tmp_path / 'feed.db'}")
    database.migrate()
    yield database
    database.dispose()


async def _take(
    feed: ChangeFeed, reader: Reader, last: str | None, until: set[tuple[str, str]]
) -> list[Message]:
    """Messages until a change of each (kind, status) in `until` came (none: the first message)."""
    out: list[Message] = []
    missing = set(until)
    async with asyncio.timeout(10):
        async for message in feed.follow(reader, last):
            out.append(message)
            if message.change is not None:
                missing.discard((message.change.kind, message.change.status))
            if not missing:
                return out
    return out


def test_each_reader_gets_each_change_once_from_one_look_per_interval(db: Database) -> None:
    tasks, queue, events = TaskStore(db), QueueStore(db), EventStore(db)

    async def scenario() -> None:
        feed = ChangeFeed(
            ChangeStore(db), interval=INTERVAL, max_readers=10, change_counter=db.change_counter
        )
        runner = asyncio.create_task(feed.run())
        try:
            readers = [feed.join() for _ in range(5)]
            wanted = {("task", "queued"), ("queue", "queued"), ("event", "pending")}
            takes = [asyncio.create_task(_take(feed, r, None, wanted)) for r in readers]
            await asyncio.sleep(INTERVAL * 3)
            looks_before = feed.looks
            await asyncio.to_thread(tasks.create, {"id": "task-a", "title": "a"})
            await asyncio.to_thread(queue.add, "task-a")
            await asyncio.to_thread(events.create, "ev-1", "task.note", "task-a", None, {})
            got = await asyncio.gather(*takes)
            looks = feed.looks - looks_before
            first = got[0]
            assert first[0].kind == "ready"
            assert all([str(m.cursor) for m in g] == [str(m.cursor) for m in first] for g in got)
            # the look is shared: five readers cost what one does (SQLite skips unchanged looks too)
            assert looks <= 12, looks

            # a reader that comes back with its cursor gets what it missed, once
            cursor = str(first[-1].cursor)
            for reader in readers:
                feed.leave(reader)
            await asyncio.to_thread(queue.remove, "task-a")
            late = feed.join()
            resumed = await _take(feed, late, cursor, {("queue", "removed"), ("task", "pending")})
            resumed = [
                m for m in resumed if m.kind != "ready"
            ]  # sent first when the look had not seen it yet
            assert sorted((m.kind, m.change.kind if m.change else "") for m in resumed) == [
                ("change", "queue"),
                ("change", "task"),
            ], resumed
            feed.leave(late)
            stale = feed.join()
            assert [m.kind for m in await _take(feed, stale, "feedbeef0000.3", set())] == ["reset"]
        finally:
            runner.cancel()

    asyncio.run(scenario())
