"""Task rows."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from orchestrator.store.db import Database
from orchestrator.store.tables import tasks

TaskRow = dict[str, Any]


class TaskStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, task_id: str) -> TaskRow | None:
        with self._db.read() as conn:
            row = conn.execute(select(tasks).where(tasks.c.id == task_id)).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["repos"] = json.loads(out["repos"]) if out.get("repos") else []
        out["execution_plan"] = json.loads(out["execution_plan"]) if out.get("execution_plan") else None
        return out
