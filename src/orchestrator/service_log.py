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

from orchestrator.store.db import StoreError
from orchestrator.store.service_log import ServiceLogLine, ServiceLogStore

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
        self._buffer: deque[ServiceLogLine] = deque(maxlen=_MAX_BUFFERED)
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self._redact(record.getMessage())
            if record.exc_info:
                message += "\n" + self._redact(logging.Formatter().formatException(record.exc_info))
            line = ServiceLogLine(
                timestamp=datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                level=record.levelname,
                logger=record.name,
                message=message,
            )
        except Exception:
            self.handleError(record)
            return
        with self._lock:
            self._buffer.append(line)

    @property
    def waiting(self) -> bool:
        """Whether lines wait to be written (read without the lock: a line added meanwhile waits a round)."""
        return bool(self._buffer)

    def take(self) -> list[ServiceLogLine]:
        with self._lock:
            lines = list(self._buffer)
            self._buffer.clear()
        return lines

    def flush_to(self, store: ServiceLogStore) -> None:
        """Writes what is buffered; lines the store refuses go back to the front, to be tried again."""
        lines = self.take()
        if not lines:
            return
        try:
            store.append(lines)
        except StoreError:
            with self._lock:
                self._buffer.extendleft(reversed(lines))


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


async def pump_to_database(
    handler: DatabaseLogHandler, store: ServiceLogStore, interval: float = 1.0
) -> None:
    while True:
        await asyncio.sleep(interval)
        if handler.waiting:  # most seconds nothing was logged: no trip to a worker thread
            await asyncio.to_thread(handler.flush_to, store)
