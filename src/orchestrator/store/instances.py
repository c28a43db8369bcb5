"""Instances of the service sharing one database: who is alive, by heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from orchestrator.clock import utc_now
from orchestrator.store.db import Database
from orchestrator.store.tables import instances


def _ago(seconds: float) -> str:
    then = datetime.now(UTC) - timedelta(seconds=seconds)
    return then.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class InstanceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def register(self, instance_id: str, hostname: str, pid: int) -> None:
        now = utc_now()
        with self._db.write() as conn:
            conn.execute(
                insert(instances).values(
                    id=instance_id, hostname=hostname, pid=pid, started_at=now, heartbeat_at=now
                )
            )

    def beat(self, instance_id: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                update(instances).where(instances.c.id == instance_id).values(heartbeat_at=utc_now())
            )

    def stop(self, instance_id: str) -> None:
        with self._db.write() as conn:
            conn.execute(update(instances).where(instances.c.id == instance_id).values(stopped_at=utc_now()))

    def live(self, lapse_seconds: float) -> set[str]:
        with self._db.read() as conn:
            rows = conn.execute(
                select(instances.c.id).where(
                    instances.c.stopped_at.is_(None), instances.c.heartbeat_at >= _ago(lapse_seconds)
                )
            )
            return {str(r[0]) for r in rows}

    def hostnames(self) -> dict[str, str]:
        with self._db.read() as conn:
            return {str(i): str(h) for i, h in conn.execute(select(instances.c.id, instances.c.hostname))}
