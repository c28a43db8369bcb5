"""The rows the dashboard's charts are computed from (`domain/stats.py`): plain column reads that run
the same on SQLite and PostgreSQL, bounded by the window and by `MAX_ROWS`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from orchestrator.store.db import Database
from orchestrator.store.tables import agents, queue

MAX_ROWS = 20_000  # per table and request: past it the oldest rows of the window are left out


class StatsStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def window(self, since: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        """Agents that were alive at `since` or later (ended since, or not ended) and queue items that
        waited then, newest first; and whether either list was cut at `MAX_ROWS`."""
        agent_query = (
            select(
                agents.c.agent_type,
                agents.c.status,
                agents.c.created_at,
                agents.c.started_at,
                agents.c.completed_at,
                agents.c.updated_at,
                agents.c.cost_usd,
                agents.c.duration_ms,
            )
            .where(
                or_(
                    agents.c.completed_at >= since,
                    agents.c.completed_at.is_(None),
                    agents.c.updated_at >= since,
                )
            )
            .order_by(agents.c.created_at.desc())
            .limit(MAX_ROWS + 1)
        )
        queue_query = (
            select(queue.c.status, queue.c.queued_at, queue.c.started_at, queue.c.completed_at)
            .where(
                or_(queue.c.status == "queued", queue.c.started_at >= since, queue.c.completed_at >= since)
            )
            .order_by(queue.c.id.desc())
            .limit(MAX_ROWS + 1)
        )
        with self._db.read() as conn:
            agent_rows = [dict(r) for r in conn.execute(agent_query).mappings()]
            queue_rows = [dict(r) for r in conn.execute(queue_query).mappings()]
        cut = len(agent_rows) > MAX_ROWS or len(queue_rows) > MAX_ROWS
        return agent_rows[:MAX_ROWS], queue_rows[:MAX_ROWS], cut
