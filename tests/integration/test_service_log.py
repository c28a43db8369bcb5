"""The service's own log into a real SQLite store: redacted, in order, kept while the store refuses it."""

from __future__ import annotations

import logging
from pathlib import Path

from orchestrator.service_log import DatabaseLogHandler
from orchestrator.store.db import Database
from orchestrator.store.service_log import ServiceLogStore


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("orchestrator.test", logging.WARNING, __file__, 1, message, None, None)


def test_lines_reach_the_store_redacted_and_in_order(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    db.migrate()
    store = ServiceLogStore(db)
    handler = DatabaseLogHandler(lambda text: text.replace("s3cret", "***"))
    handler.emit(_record("first"))
    handler.emit(_record("token s3cret"))
    handler.flush_to(store)
    lines = store.latest(10)
    assert [(line.level, line.logger, line.message) for line in lines] == [
        ("WARNING", "orchestrator.test", "first"),
        ("WARNING", "orchestrator.test", "token ***"),
    ]
    assert handler.take() == []


def test_lines_the_store_refuses_are_kept_and_written_once_it_accepts(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")  # not migrated yet: no table to write to
    store = ServiceLogStore(db)
    handler = DatabaseLogHandler(lambda text: text)
    handler.emit(_record("one"))
    handler.flush_to(store)
    handler.emit(_record("two"))
    db.migrate()
    handler.flush_to(store)
    assert [line.message for line in store.latest(10)] == ["one", "two"]


def test_latest_gives_the_newest_lines_oldest_first(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    db.migrate()
    store = ServiceLogStore(db)
    handler = DatabaseLogHandler(lambda text: text)
    for i in range(5):
        handler.emit(_record(str(i)))
    handler.flush_to(store)
    assert [line.message for line in store.latest(2)] == ["3", "4"]
