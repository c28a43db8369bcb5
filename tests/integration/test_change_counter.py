"""The database's change counter, on which GET /api/agents keeps encoded pages: it must move with every
commit, from any connection or process, and only then."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from orchestrator.store.agents import AgentFilter, AgentStore
from orchestrator.store.db import Database


def test_the_counter_moves_with_each_commit_from_anywhere_and_only_then(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    store = AgentStore(db)
    before = db.change_counter()
    assert before is not None
    store.page(AgentFilter(), limit=50, offset=0)
    assert db.change_counter() == before  # reads change nothing
    store.insert(
        {
            "id": "coding-0001",
            "agent_type": "coding",
            "prompt": "p",
            "instance_id": "me",
            "timeout_seconds": 60,
            "max_turns": 5,
            "runtime": "host",
        }
    )
    after_insert = db.change_counter()
    assert after_insert != before
    other = sqlite3.connect(path, isolation_level=None)  # another process's connection, say
    try:
        other.execute("UPDATE agents SET log_lines = log_lines + 1")
    finally:
        other.close()
    assert db.change_counter() not in (before, after_insert)
    db.dispose()


def test_no_counter_where_none_can_be_read() -> None:
    assert Database("sqlite:///:memory:").change_counter() is None
