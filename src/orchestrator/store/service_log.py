"""The service's own log lines in the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import insert, select

from orchestrator.store.db import Database
from orchestrator.store.tables import service_logs


@dataclass(frozen=True)
class ServiceLogLine:
    timestamp: str
    level: str
    logger: str
    message: str


class ServiceLogStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, lines: Sequence[ServiceLogLine]) -> None:
        """Writes `lines` in one transaction; a StoreError means none of them was written."""
        if not lines:
            return
        with self._db.write() as conn:
            conn.execute(insert(service_logs), [asdict(line) for line in lines])

    def latest(self, limit: int) -> list[ServiceLogLine]:
        """The last `limit` lines, oldest first."""
        cols = service_logs.c
        with self._db.read() as conn:
            newest = select(cols.timestamp, cols.level, cols.logger, cols.message).order_by(cols.id.desc())
            rows = conn.execute(newest.limit(limit)).all()
        return [ServiceLogLine(str(t), str(lv), str(lg), str(m)) for t, lv, lg, m in reversed(rows)]
