"""The log writer and store on a real SQLite file: offsets never go back, a shutdown drain is bounded."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from orchestrator.agents.log_bus import LogBus
from orchestrator.agents.log_writer import LogWriter
from orchestrator.store.agents import AgentStore
from orchestrator.store.db import Database, StoreUnavailable
from orchestrator.store.logs import LogStore, NewLine, Progress


def _store(path: Path) -> tuple[Database, LogStore]:
    db = Database(f"sqlite:///{path}")
    db.migrate()
    AgentStore(db).insert(
        {
            "id": "coding-0001",
            "status": "running",
            "agent_type": "coding",
            "prompt": "p",
            "instance_id": "me",
            "timeout_seconds": 60,
            "max_turns": 5,
            "runtime": "host",
        }
    )
    return db, LogStore(db)


def _offsets(db: Database) -> tuple[int, int]:
    with db.read() as conn:
        row = conn.exec_driver_sql(
            "SELECT stdout_offset, stderr_offset FROM agents WHERE id = 'coding-0001'"
        ).one()
    return int(row[0]), int(row[1])


def _line(n: int) -> NewLine:
    return NewLine("coding-0001", "2026-12-02T00:00:00.000Z", "stdout", f"line {n}")


def test_offsets_never_go_back(tmp_path: Path) -> None:
    db, logs = _store(tmp_path / "o.db")
    logs.append([_line(1)], [Progress("coding-0001", 500, 40, 1)], "me")
    logs.append([], [Progress("coding-0001", 120, 10, 0)], "me")
    assert _offsets(db) == (500, 40)
    logs.append([_line(2)], [Progress("coding-0001", 700, 30, 1)], "me")
    assert _offsets(db) == (700, 40)


def test_a_drain_against_a_locked_database_ends_in_bounded_time(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    _, logs = _store(path)

    async def scenario() -> tuple[bool, float]:
        writer = LogWriter(logs, LogBus(), flush_interval=0.01, max_lines=1000, owner="me")
        writer.add([_line(1), _line(2)], Progress("coding-0001", 14, 0, 2))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            done = await writer.drain(within=1.0)
            took = loop.time() - started
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return done, took

    done, took = asyncio.run(scenario())
    assert done is False
    assert took < 8, took  # the busy timeout alone is 10 s: the drain gave up before one attempt ended


def test_a_barrier_does_not_wait_out_the_pause_between_flushes(tmp_path: Path) -> None:
    """A run's end waits on a barrier for its last lines: they are stored by a flush that starts at once,
    not after the pause that gathers a stream of lines (an hour here)."""
    _, logs = _store(tmp_path / "b.db")

    async def scenario() -> list[str]:
        writer = LogWriter(logs, LogBus(), flush_interval=3600, max_lines=1000, owner="me")
        running = asyncio.create_task(writer.run())
        try:
            writer.add([_line(1)], Progress("coding-0001", 7, 0, 1))
            await asyncio.wait_for(writer.barrier(), 30)  # the first flush has no pause before it
            writer.add([_line(2)], Progress("coding-0001", 14, 0, 1))
            await asyncio.wait_for(writer.barrier(), 30)
        finally:
            running.cancel()
        return [line["content"] for line in logs.after("coding-0001", 0, 10)]

    assert asyncio.run(scenario()) == ["line 1", "line 2"]


def test_a_full_disk_while_lines_are_stored_says_so_and_stores_none_of_them(tmp_path: Path) -> None:
    """The lines go through SQLite's own driver (store/log_writes.py): its errors come out as the store's,
    a full disk as 'unavailable, retry later', and the transaction leaves nothing half-written."""
    db, logs = _store(tmp_path / "f.db")
    logs.append([_line(1)], [Progress("coding-0001", 7, 0, 1)], "me")
    with db.write() as conn:  # the file may not grow from here (one pooled connection in this thread)
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
    big = NewLine("coding-0001", "2026-12-02T00:00:00.000Z", "stdout", "x" * 200_000)
    with pytest.raises(StoreUnavailable, match="full"):
        logs.append([big], [Progress("coding-0001", 200_008, 0, 1)], "me")
    assert [line["content"] for line in logs.after("coding-0001", 0, 10)] == ["line 1"]
    assert _offsets(db) == (7, 0)
