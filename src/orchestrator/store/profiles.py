"""Agent profiles: one row per name, its settings as JSON (checked by domain/profiles.py on the way in)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import RowMapping, delete, insert, select, update

from orchestrator.clock import utc_now
from orchestrator.store.db import Database
from orchestrator.store.tables import profiles

ProfileRow = dict[str, Any]


class ProfileStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, name: str, agent_type: str, settings: dict[str, Any]) -> tuple[ProfileRow, bool]:
        """The profile as stored, and whether it is new (else it replaced the one of that name)."""
        now = utc_now()
        values = {"agent_type": agent_type, "settings": json.dumps(settings), "updated_at": now}
        with self._db.write() as conn:
            changed = conn.execute(update(profiles).where(profiles.c.name == name).values(**values)).rowcount
            if not changed:
                conn.execute(insert(profiles).values(name=name, created_at=now, **values))
        found = self.get(name)
        assert found is not None
        return found, not changed

    def get(self, name: str) -> ProfileRow | None:
        with self._db.read() as conn:
            row = conn.execute(select(profiles).where(profiles.c.name == name)).mappings().first()
        return _profile(row) if row is not None else None

    def all(self) -> list[ProfileRow]:
        with self._db.read() as conn:
            return [_profile(r) for r in conn.execute(select(profiles).order_by(profiles.c.name)).mappings()]

    def delete(self, name: str) -> bool:
        with self._db.write() as conn:
            return bool(conn.execute(delete(profiles).where(profiles.c.name == name)).rowcount)


def _profile(row: RowMapping) -> ProfileRow:
    out = dict(row)
    out["settings"] = json.loads(out["settings"])
    return out
