"""Agent log lines: appended in batches together with the read offsets, read back by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import func, select

from orchestrator.store.db import Database
from orchestrator.store.log_writes import CoreWrites, LogWrites, SqliteWrites
from orchestrator.store.tables import agent_logs


class NewLine(NamedTuple):
    """A tuple in the order of the insert's columns (cheap to make for every line, and bound as is)."""

    agent_id: str
    timestamp: str
    stream: str
    content: str


@dataclass(frozen=True, slots=True)
class Progress:
    """How far each output stream of an agent has been stored, in bytes, and how many lines it has."""

    agent_id: str
    stdout_offset: int
    stderr_offset: int
    lines_added: int


class LogStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def append(
        self, lines: Sequence[NewLine], progress: Sequence[Progress], owner: str
    ) -> tuple[list[NewLine], list[int], set[str]]:
        """Stores lines and offsets in one transaction, only for agents `owner` still owns (checked under
        a row lock, so an instance that lost an agent to a takeover never writes for it again).
        Returns the stored lines, their ids in order, and the agents no longer owned."""
        agent_ids = {p.agent_id for p in progress} | {ln.agent_id for ln in lines}
        with self._db.write() as conn:
            store: LogWrites = SqliteWrites(conn) if self._db.is_sqlite else CoreWrites(conn)
            owned = store.owned(sorted(agent_ids), owner)
            lines = [ln for ln in lines if ln.agent_id in owned]
            progress = [p for p in progress if p.agent_id in owned]
            ids = store.insert(lines) if lines else []
            if progress:
                store.progress(progress)
        return list(lines), ids, agent_ids - owned

    def after(self, agent_id: str, after_id: int, limit: int) -> list[dict[str, Any]]:
        query = (
            select(agent_logs)
            .where(agent_logs.c.agent_id == agent_id, agent_logs.c.id > after_id)
            .order_by(agent_logs.c.id)
            .limit(limit)
        )
        with self._db.read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def count(self, agent_id: str) -> int:
        with self._db.read() as conn:
            n = conn.execute(
                select(func.count()).select_from(agent_logs).where(agent_logs.c.agent_id == agent_id)
            ).scalar_one()
        return int(n)
