"""The service's own log: structured lines on the console and in the database, secrets redacted."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from orchestrator.store.db import Database, StoreError
from orchestrator.store.tables import service_logs

_MAX_BUFFERED = 10_000


class RedactingFormatter(logging.Formatter):
    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._redact(json.dumps(entry, ensure_ascii=False))


class DatabaseLogHandler(logging.Handler):
    """Buffers records; `flush_to` writes them in one transaction from a background task."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__(logging.INFO)
        self._redact = redact
        self._buffer: deque[dict[str, Any]] = deque(maxlen=_MAX_BUFFERED)
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self._redact(record.getMessage())
            if record.exc_info:
                message += "\n" + self._redact(logging.Formatter().formatException(record.exc_info))
            row = {
                "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname,
                "logger": record.name,
                "message": message,
            }
        except Exception:
            self.handleError(record)
            return
        with self._lock:
            self._buffer.append(row)

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = list(self._buffer)
            self._buffer.clear()
        return rows

    def flush_to(self, db: Database) -> None:
        rows = self.take()
        if not rows:
            return
        try:
            with db.write() as conn:
                conn.execute(insert(service_logs), rows)
        except StoreError:
            with self._lock:
                self._buffer.extendleft(reversed(rows))


def configure(level: str, redact: Callable[[str], str]) -> DatabaseLogHandler:
    root = logging.getLogger("orchestrator")
    root.setLevel(level)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(RedactingFormatter(redact))
    root.addHandler(console)
    db_handler = DatabaseLogHandler(redact)
    root.addHandler(db_handler)
    return db_handler


async def pump_to_database(handler: DatabaseLogHandler, db: Database, interval: float = 1.0) -> None:
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(handler.flush_to, db)
