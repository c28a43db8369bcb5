"""Agent log lines: appended in batches together with the read offsets, read back by id."""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Connection,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)

from orchestrator.store.db import Database, StoreError
from orchestrator.store.tables import agent_logs, agents


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


def _at_least(column: Column[int], param: str) -> ColumnElement[int]:
    """The larger of the stored offset and the new one: offsets never go back."""
    new: BindParameter[int] = bindparam(param)
    return case((column > new, column), else_=new)


# 4 bound values a row; SQLite allows 32766 per statement since 3.32, 999 before
_ROWS_PER_INSERT = 5000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 249


@functools.lru_cache(maxsize=8)
def _multirow_insert(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?)"] * rows)
    return f"INSERT INTO agent_logs (agent_id, timestamp, stream, content) VALUES {values}"  # noqa: S608 (placeholders only)


# Built once: every append runs these (building one costs more than running it)
_OWNED_FOR_UPDATE = (
    select(agents.c.id)
    .where(agents.c.id.in_(bindparam("l_ids", expanding=True)), agents.c.instance_id == bindparam("l_owner"))
    .with_for_update()
)
_PROGRESS = (
    update(agents)
    .where(agents.c.id == bindparam("b_id"))
    .values(
        stdout_offset=_at_least(agents.c.stdout_offset, "b_out"),
        stderr_offset=_at_least(agents.c.stderr_offset, "b_err"),
        log_lines=agents.c.log_lines + bindparam("b_n"),
    )
)


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
            owned = {
                str(r[0])
                for r in conn.execute(_OWNED_FOR_UPDATE, {"l_ids": sorted(agent_ids), "l_owner": owner})
            }
            lines = [ln for ln in lines if ln.agent_id in owned]
            progress = [p for p in progress if p.agent_id in owned]
            ids = self._insert(conn, lines)
            if progress:
                conn.execute(
                    _PROGRESS,
                    [
                        {
                            "b_id": p.agent_id,
                            "b_out": p.stdout_offset,
                            "b_err": p.stderr_offset,
                            "b_n": p.lines_added,
                        }
                        for p in progress
                    ],
                )
        return list(lines), ids, agent_ids - owned

    def _insert(self, conn: Connection, lines: Sequence[NewLine]) -> list[int]:
        if not lines:
            return []
        if self._db.is_sqlite:
            return self._insert_sqlite(conn, lines)
        result = conn.execute(
            insert(agent_logs).returning(agent_logs.c.id, sort_by_parameter_order=True),
            [
                {
                    "agent_id": ln.agent_id,
                    "timestamp": ln.timestamp,
                    "stream": ln.stream,
                    "content": ln.content,
                }
                for ln in lines
            ],
        )
        return [int(row[0]) for row in result]

    @staticmethod
    def _insert_sqlite(conn: Connection, lines: Sequence[NewLine]) -> list[int]:
        """Multi-row INSERTs (an executemany steps, and hands the GIL over, once per row; SQLAlchemy's
        ordered RETURNING even runs one INSERT per row on SQLite). The ids follow the largest one before,
        as SQLite assigns them, and this transaction holds the write lock: nobody inserts in between."""
        first = int(conn.exec_driver_sql("SELECT max(id) FROM agent_logs").scalar() or 0) + 1
        for start in range(0, len(lines), _ROWS_PER_INSERT):
            rows = lines[start : start + _ROWS_PER_INSERT]
            conn.exec_driver_sql(_multirow_insert(len(rows)), tuple(itertools.chain.from_iterable(rows)))
        ids = list(range(first, first + len(lines)))
        last = conn.exec_driver_sql("SELECT max(id) FROM agent_logs").scalar()
        if last != ids[-1]:  # SQLite gives each row the largest id plus one, short of the largest integer
            raise StoreError(f"log line ids not assigned in order: {first}..{last} for {len(lines)} lines")
        return ids

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
