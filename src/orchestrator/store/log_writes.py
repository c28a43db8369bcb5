"""The statements of a log append, inside its transaction: SQLAlchemy Core's on PostgreSQL; on SQLite,
plain SQL on the driver's connection of the same transaction. An append is the service's most frequent
write (a transaction a line while agents run), and there SQLAlchemy's execution of its few small
statements took 1.7 times their own work on top of it (232 against 86 µs of CPU an append of a line,
bench/bench_log_append.py)."""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, cast

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Connection,
    bindparam,
    case,
    insert,
    select,
    update,
)

from orchestrator.store.db import StoreError
from orchestrator.store.tables import agent_logs, agents

if TYPE_CHECKING:
    from orchestrator.store.logs import NewLine, Progress


class LogWrites(Protocol):
    def owned(self, agent_ids: list[str], owner: str) -> set[str]:
        """Which of the agents `owner` owns, their rows locked until the transaction ends."""

    def insert(self, lines: Sequence[NewLine]) -> list[int]:
        """The lines (one at least) stored; their ids in order."""

    def progress(self, progress: Sequence[Progress]) -> None:
        """Each agent's stored offsets moved forward (never back) and its line count raised."""


def _at_least(column: Column[int], param: str) -> ColumnElement[int]:
    new: BindParameter[int] = bindparam(param)
    return case((column > new, column), else_=new)


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


class CoreWrites:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def owned(self, agent_ids: list[str], owner: str) -> set[str]:
        rows = self._conn.execute(_OWNED_FOR_UPDATE, {"l_ids": agent_ids, "l_owner": owner})
        return {str(r[0]) for r in rows}

    def insert(self, lines: Sequence[NewLine]) -> list[int]:
        result = self._conn.execute(
            insert(agent_logs).returning(agent_logs.c.id, sort_by_parameter_order=True),
            [{"agent_id": a, "timestamp": t, "stream": s, "content": c} for a, t, s, c in lines],
        )
        return [int(row[0]) for row in result]

    def progress(self, progress: Sequence[Progress]) -> None:
        self._conn.execute(
            _PROGRESS,
            [
                {"b_id": p.agent_id, "b_out": p.stdout_offset, "b_err": p.stderr_offset, "b_n": p.lines_added}
                for p in progress
            ],
        )


# 4 bound values a row; SQLite allows 32766 per statement since 3.32, 999 before
_ROWS_PER_INSERT = 5000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 249
_SQLITE_INSERT = "INSERT INTO agent_logs (agent_id, timestamp, stream, content) VALUES {}"
# the write lock is the transaction's (BEGIN IMMEDIATE): SQLite has no row locks to take
_SQLITE_OWNED = "SELECT id FROM agents WHERE instance_id = ? AND id IN ({})"
_SQLITE_PROGRESS = (
    "UPDATE agents SET stdout_offset = max(stdout_offset, ?), stderr_offset = max(stderr_offset, ?),"
    " log_lines = log_lines + ? WHERE id = ?"
)


@functools.lru_cache(maxsize=8)
def _placeholders(sql: str, n: int, row: str = "?") -> str:
    return sql.format(", ".join([row] * n))


class SqliteWrites:
    def __init__(self, conn: Connection) -> None:
        self._conn = cast(sqlite3.Connection, conn.connection.driver_connection)

    def owned(self, agent_ids: list[str], owner: str) -> set[str]:
        rows = self._conn.execute(_placeholders(_SQLITE_OWNED, len(agent_ids)), (owner, *agent_ids))
        return {str(r[0]) for r in rows}

    def insert(self, lines: Sequence[NewLine]) -> list[int]:
        """Multi-row INSERTs (an executemany steps, and hands the GIL over, once per row; SQLAlchemy's
        ordered RETURNING even runs one INSERT per row on SQLite). The ids follow the largest one before,
        as SQLite assigns them, and this transaction holds the write lock: nobody inserts in between."""
        first = int(self._conn.execute("SELECT max(id) FROM agent_logs").fetchone()[0] or 0) + 1
        last = None
        for start in range(0, len(lines), _ROWS_PER_INSERT):
            rows = lines[start : start + _ROWS_PER_INSERT]
            sql = _placeholders(_SQLITE_INSERT, len(rows), "(?, ?, ?, ?)")
            last = self._conn.execute(sql, tuple(itertools.chain.from_iterable(rows))).lastrowid
        ids = list(range(first, first + len(lines)))
        if last != ids[-1]:  # SQLite gives each row the largest id plus one, short of the largest integer
            raise StoreError(f"log line ids not assigned in order: {first}..{last} for {len(lines)} lines")
        return ids

    def progress(self, progress: Sequence[Progress]) -> None:
        rows = [(p.stdout_offset, p.stderr_offset, p.lines_added, p.agent_id) for p in progress]
        self._conn.executemany(_SQLITE_PROGRESS, rows)
