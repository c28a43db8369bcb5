"""What the change feed reads: one cheap look at the rows that may have changed since the last look.

Agents, queue items and events by their open set (starting or running, queued or processing, pending or
processing) and any row that left it since the last look, by id; new agents by `created_at` and new
events by `seq`; tasks (whose failed ones may be queued again) by `updated_at` over a trailing window (a
write stamps it inside its transaction, so a window wider than any transaction catches a late commit
too). No index is added for it: agents are read by the indexes they have, tasks by the window."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import Connection, func, or_, select

from orchestrator.store.db import Database
from orchestrator.store.tables import agents, events, queue, queue_settings, tasks

OPEN_AGENTS = ("starting", "running")
OPEN_QUEUE = ("queued", "processing")
OPEN_EVENTS = ("pending", "processing")

# a row's id → what it looks like now: any difference from the last look is a change
Looks = dict[str, tuple[str, ...]]


@dataclass
class Look:
    agents: Looks = field(default_factory=dict)
    tasks: Looks = field(default_factory=dict)
    queue: Looks = field(default_factory=dict)
    events: Looks = field(default_factory=dict)
    settings: tuple[tuple[str, str], ...] = ()
    max_seq: int = 0
    # task of each agent, queue item and event read, for the message
    task_of: dict[tuple[str, str], str | None] = field(default_factory=dict)


class ChangeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def look(
        self,
        since: str,
        *,
        after_seq: int | None,
        agent_ids: Collection[str] = (),
        queue_ids: Collection[str] = (),
        event_ids: Collection[str] = (),
    ) -> Look:
        """The open agents, queue items and events with the given ones, agents created and tasks updated
        at `since` or later, events past `after_seq` (None: the first look, which only learns the last
        seq), and the queue's settings: in one read transaction."""
        with self._db.read() as conn:
            if after_seq is None:
                after_seq = int(conn.execute(select(func.coalesce(func.max(events.c.seq), 0))).scalar_one())
            out = Look(max_seq=after_seq)
            self._agents(conn, since, list(agent_ids), out)
            self._tasks(conn, since, out)
            self._queue(conn, [int(i) for i in queue_ids if i.isdigit()], out)
            self._events(conn, after_seq, list(event_ids), out)
            out.settings = tuple(
                sorted(
                    (str(k), str(v))
                    for k, v in conn.execute(select(queue_settings.c.key, queue_settings.c.value))
                )
            )
        return out

    @staticmethod
    def _agents(conn: Connection, since: str, ids: list[str], out: Look) -> None:
        # an agent's status moves only from starting or running: the open ones, those that were open at
        # the last look, and the ones created since (each by an index) hold every change
        wanted = or_(agents.c.status.in_(OPEN_AGENTS), agents.c.created_at >= since)
        query = select(agents.c.id, agents.c.status, agents.c.task_id).where(
            or_(wanted, agents.c.id.in_(ids)) if ids else wanted
        )
        for row in conn.execute(query):
            out.agents[row.id] = (row.status,)
            out.task_of[("agent", row.id)] = row.task_id

    @staticmethod
    def _tasks(conn: Connection, since: str, out: Look) -> None:
        query = select(
            tasks.c.id, tasks.c.status, tasks.c.workflow_step, tasks.c.waiting_for, tasks.c.pr_number
        ).where(tasks.c.updated_at >= since)
        for row in conn.execute(query):
            out.tasks[row.id] = (
                row.status,
                row.workflow_step or "",
                row.waiting_for or "",
                str(row.pr_number or ""),
            )

    @staticmethod
    def _queue(conn: Connection, ids: list[int], out: Look) -> None:
        wanted = queue.c.status.in_(OPEN_QUEUE)
        query = select(
            queue.c.id,
            queue.c.status,
            queue.c.task_id,
            queue.c.position,
            queue.c.agent_id,
            queue.c.retry_at,
            queue.c.blocked_reason,
        ).where(or_(wanted, queue.c.id.in_(ids)) if ids else wanted)
        for row in conn.execute(query):
            key = str(row.id)
            out.queue[key] = (
                row.status,
                str(row.position),
                row.agent_id or "",
                row.retry_at or "",
                row.blocked_reason or "",
            )
            out.task_of[("queue", key)] = row.task_id

    @staticmethod
    def _events(conn: Connection, after_seq: int, ids: list[str], out: Look) -> None:
        wanted = or_(events.c.status.in_(OPEN_EVENTS), events.c.seq > after_seq)
        query = select(events.c.id, events.c.status, events.c.task_id, events.c.seq, events.c.attempts).where(
            or_(wanted, events.c.id.in_(ids)) if ids else wanted
        )
        for row in conn.execute(query):
            out.events[row.id] = (row.status, str(row.attempts))
            out.task_of[("event", row.id)] = row.task_id
            if row.seq is not None and row.seq > out.max_seq:
                out.max_seq = int(row.seq)
