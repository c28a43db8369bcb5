"""Reads a server's database and lists every row that is half-written or contradicts another.

Used after fuzzing and hostile input: whatever the requests were, each agent, task, queue item and
event must be in a state the service could have put it in on purpose."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from tests.support.server import Server

TERMINAL = ("completed", "failed", "timeout", "killed", "rate_limited")
ACTIVE = ("starting", "running")
TASK_STATUSES = ("pending", "queued", "assigned", "in_progress", "completed", "failed")
ITEM_STATUSES = ("queued", "processing", "completed", "failed")
EVENT_STATUSES = ("pending", "processing", "processed", "failed")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# (what is wrong, query listing the rows that show it)
CHECKS: list[tuple[str, str]] = [
    (
        "agent with an unknown status",
        f"SELECT id, status FROM agents WHERE status NOT IN {_in(TERMINAL + ACTIVE)}",
    ),
    (
        "ended agent without completed_at",
        f"SELECT id, status FROM agents WHERE status IN {_in(TERMINAL)} AND completed_at IS NULL",
    ),
    (
        "ended agent without an end reason",
        f"SELECT id, status FROM agents WHERE status IN {_in(TERMINAL)} AND end_reason IS NULL",
    ),
    (
        "active agent with an end reason",
        f"SELECT id, status, end_reason FROM agents WHERE status IN {_in(ACTIVE)} AND end_reason IS NOT NULL",
    ),
    (
        "running agent without started_at or process",
        "SELECT id FROM agents WHERE status = 'running' AND (started_at IS NULL OR container_id IS NULL)",
    ),
    (
        "active agent with completed_at or exit code",
        f"SELECT id, status FROM agents WHERE status IN {_in(ACTIVE)} "
        "AND (completed_at IS NOT NULL OR exit_code IS NOT NULL)",
    ),
    (
        "ended agent whose log_lines differs from its stored lines",
        "SELECT a.id, a.log_lines, COUNT(l.id) FROM agents a LEFT JOIN agent_logs l ON l.agent_id = a.id "
        f"WHERE a.status IN {_in(TERMINAL)} GROUP BY a.id, a.log_lines HAVING a.log_lines != COUNT(l.id)",
    ),
    (
        "log line of a missing agent",
        "SELECT l.id, l.agent_id FROM agent_logs l LEFT JOIN agents a ON a.id = l.agent_id "
        "WHERE a.id IS NULL",
    ),
    ("task with an unknown status", f"SELECT id, status FROM tasks WHERE status NOT IN {_in(TASK_STATUSES)}"),
    (
        "queue item of a missing task",
        "SELECT q.id, q.task_id FROM queue q LEFT JOIN tasks t ON t.id = q.task_id WHERE t.id IS NULL",
    ),
    (
        "queue item with an unknown status",
        f"SELECT id, status FROM queue WHERE status NOT IN {_in(ITEM_STATUSES)}",
    ),
    (
        "processing queue item without agent or start time",
        "SELECT id, task_id FROM queue "
        "WHERE status = 'processing' AND (agent_id IS NULL OR started_at IS NULL)",
    ),
    (
        "ended queue item without completed_at",
        "SELECT id, task_id FROM queue WHERE status IN ('completed', 'failed') AND completed_at IS NULL",
    ),
    (
        "task with more than one active queue item",
        "SELECT task_id, COUNT(*) FROM queue WHERE status IN ('queued', 'processing') "
        "GROUP BY task_id HAVING COUNT(*) > 1",
    ),
    (
        "queued task without an active queue item",
        "SELECT t.id FROM tasks t WHERE t.status = 'queued' AND NOT EXISTS "
        "(SELECT 1 FROM queue q WHERE q.task_id = t.id AND q.status IN ('queued', 'processing'))",
    ),
    (
        "waiting queue item whose task is not queued",
        "SELECT q.id, q.task_id, t.status FROM queue q JOIN tasks t ON t.id = q.task_id "
        "WHERE q.status = 'queued' AND t.status != 'queued'",
    ),
    (
        "processing queue item whose task is not being worked on",
        "SELECT q.id, q.task_id, t.status FROM queue q JOIN tasks t ON t.id = q.task_id "
        "WHERE q.status = 'processing' AND t.status NOT IN ('assigned', 'in_progress')",
    ),
    (
        "event with an unknown status",
        f"SELECT id, status FROM events WHERE status NOT IN {_in(EVENT_STATUSES)}",
    ),
    (
        "processed event without processed_at",
        "SELECT id FROM events WHERE status = 'processed' AND processed_at IS NULL",
    ),
]


def query(server: Server, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` from the server's database (its own reader if it has one, else SQLite read-only)."""
    reader = getattr(server, "query", None)
    if reader is not None:
        return [tuple(r) for r in reader(sql)]
    conn = sqlite3.connect(f"file:{server.data_dir / 'orchestrator.db'}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def problems(server: Server, *, allow_active: bool = True) -> list[str]:
    found = []
    for what, sql in CHECKS:
        rows = query(server, sql)
        if rows:
            found.append(f"{what}: {rows[:5]}")
    if not allow_active:
        rows = query(server, f"SELECT id, status FROM agents WHERE status IN {_in(ACTIVE)}")
        if rows:
            found.append(f"agent still active: {rows[:5]}")
    return found


def wait_agents_ended(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while query(server, f"SELECT id FROM agents WHERE status IN {_in(ACTIVE)}"):
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)


def counts(server: Server) -> dict[str, int]:
    tables = ("agents", "agent_logs", "tasks", "queue", "queue_settings", "events")
    return {t: int(query(server, f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}
