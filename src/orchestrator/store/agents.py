"""Agent rows: insert, guarded status moves, listing and analytics."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, bindparam, func, insert, select, update

from orchestrator.clock import utc_now
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.lifecycles import AGENTS
from orchestrator.domain.types import ACTIVE_AGENT_STATUSES, AgentStatus, QueueItemStatus
from orchestrator.domain.watchdog import Budget, Spent
from orchestrator.errors import Conflict
from orchestrator.store.db import Database
from orchestrator.store.moves import move
from orchestrator.store.outbox import enqueue
from orchestrator.store.tables import agents, queue, tasks

AgentRow = dict[str, Any]

# The statements of the hot paths, built once (building one costs more than running it)
_INSERT_RETURNING = insert(agents).returning(*agents.c)
_ROW = select(agents).where(agents.c.id == bindparam("a_id"))
_TASK_BUDGET = select(tasks.c.budget).where(tasks.c.id == bindparam("t_id"))
_TASK_SPENT = select(
    func.coalesce(func.sum(agents.c.cost_usd), 0.0),
    func.coalesce(func.sum(agents.c.num_turns), 0),
    func.coalesce(func.sum(agents.c.duration_ms), 0),
).where(agents.c.task_id == bindparam("t_id"))
_LAST_OF_TASK = (
    select(agents).where(agents.c.task_id == bindparam("t_id")).order_by(agents.c.created_at.desc()).limit(1)
)
_METADATA_FOR_UPDATE = select(agents.c.metadata).where(agents.c.id == bindparam("a_id")).with_for_update()


class ClaimLost(Conflict):
    """The queue item an agent was to start for went back to the queue (its instance was taken for dead)."""


@dataclass(frozen=True)
class AgentFilter:
    status: AgentStatus | None = None
    agent_type: str | None = None
    task_id: str | None = None


class AgentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, row: Mapping[str, Any], *, for_queue_item: int | None = None) -> AgentRow:
        """A new agent, always in its lifecycle's first status. Given the queue item it starts, only while
        that item is still processing, claimed by this agent's instance for this agent: an instance that
        froze between its claim and its spawn must not start work another instance was given meanwhile."""
        now = utc_now()
        values = {"created_at": now, "updated_at": now, **row, "status": AGENTS.initial.value}
        with self._db.write() as conn:
            if for_queue_item is not None:
                claim = conn.execute(
                    select(queue.c.id)
                    .where(
                        queue.c.id == for_queue_item,
                        queue.c.status == QueueItemStatus.PROCESSING.value,
                        queue.c.agent_id == values["id"],
                        queue.c.instance_id == values.get("instance_id"),
                    )
                    .with_for_update()
                ).first()
                if claim is None:
                    raise ClaimLost(
                        f"queue item {for_queue_item} is no longer claimed for agent {values['id']}"
                    )
            found = conn.execute(_INSERT_RETURNING, values).mappings().one()
        return decode_agent(found)

    def get(self, agent_id: str) -> AgentRow | None:
        with self._db.read() as conn:
            row = conn.execute(_ROW, {"a_id": agent_id}).mappings().first()
        return decode_agent(row) if row is not None else None

    def move(self, agent_id: str, target: AgentStatus, *, owner: str | None = None, **fields: Any) -> bool:
        """Moves the agent to `target` only from a status that may precede it (and, given an owner, only
        while that instance owns it); False if refused."""
        if "metadata" in fields and not isinstance(fields["metadata"], str | None):
            fields["metadata"] = json.dumps(fields["metadata"])
        with self._db.write() as conn:
            return _move(conn, agent_id, target, owner, fields)

    def end(
        self,
        agent_id: str,
        target: AgentStatus,
        *,
        owner: str,
        metadata: Mapping[str, Any],
        keep: Iterable[str] = (),
        **fields: Any,
    ) -> AgentRow | None:
        """A run's verdict: the move to `target` as `move` makes it, with `metadata` and the `keep` keys of
        the metadata the row has, in one transaction that also reads the row as written; that row, or
        None when the move was refused."""
        with self._db.write() as conn:
            raw = conn.execute(_METADATA_FOR_UPDATE, {"a_id": agent_id}).scalar()
            earlier = json.loads(raw) if raw else {}
            kept = {k: earlier[k] for k in keep if k in earlier}
            fields["metadata"] = json.dumps({**metadata, **kept})
            if not _move(conn, agent_id, target, owner, fields):
                return None
            row = conn.execute(_ROW, {"a_id": agent_id}).mappings().one()
        return decode_agent(row)

    def task_purse(self, task_id: str) -> tuple[Budget, Spent] | None:
        """A task's budget, one purse for all its agents, and what its agents have spent of it; None
        when the task has no budget (its agents' spend is then not summed)."""
        with self._db.read() as conn:
            raw = conn.execute(_TASK_BUDGET, {"t_id": task_id}).scalar_one_or_none()
            if not raw:
                return None
            usd, turns, ms = conn.execute(_TASK_SPENT, {"t_id": task_id}).one()
        return Budget(**json.loads(raw)), Spent(usd=float(usd), turns=int(turns), seconds=float(ms) / 1000)

    def request_kill(self, agent_id: str) -> bool:
        """Asks the agent's owner to kill it (the owner looks for requests every moment); False if the
        agent has already ended."""
        active = [s.value for s in ACTIVE_AGENT_STATUSES]
        with self._db.write() as conn:
            result = conn.execute(
                update(agents)
                .where(agents.c.id == agent_id, agents.c.status.in_(active))
                .values(kill_requested_at=utc_now())
            )
        return result.rowcount == 1

    def kill_requests(self, owner: str) -> list[str]:
        """Active agents of `owner` that another instance asked to kill."""
        active = [s.value for s in ACTIVE_AGENT_STATUSES]
        with self._db.read() as conn:
            return [
                str(agent_id)
                for (agent_id,) in conn.execute(
                    select(agents.c.id).where(
                        agents.c.instance_id == owner,
                        agents.c.kill_requested_at.is_not(None),
                        agents.c.status.in_(active),
                    )
                )
            ]

    def update_fields(self, agent_id: str, **fields: Any) -> None:
        if "status" in fields:
            raise ValueError("an agent's status changes by move()")
        with self._db.write() as conn:
            conn.execute(update(agents).where(agents.c.id == agent_id).values(**fields, updated_at=utc_now()))

    def page(self, flt: AgentFilter, *, limit: int, offset: int) -> tuple[list[AgentRow], int]:
        """A page of agents, newest first, without their prompts."""
        conditions = []
        if flt.status is not None:
            conditions.append(agents.c.status == flt.status.value)
        if flt.agent_type is not None:
            conditions.append(agents.c.agent_type == flt.agent_type)
        if flt.task_id is not None:
            conditions.append(agents.c.task_id == flt.task_id)
        where = and_(*conditions) if conditions else None
        listed = [c for c in agents.c if c.name != "prompt"]  # up to 200k characters, only in the detail
        query = select(*listed).order_by(agents.c.created_at.desc(), agents.c.id).limit(limit).offset(offset)
        count = select(func.count()).select_from(agents)
        if where is not None:
            query = query.where(where)
            count = count.where(where)
        with self._db.read() as conn:
            rows = [decode_agent(r) for r in conn.execute(query).mappings()]
            total = conn.execute(count).scalar_one()
        return rows, int(total)

    def add_flag(self, agent_id: str, flag: dict[str, Any]) -> None:
        with self._db.write() as conn:
            raw = conn.execute(select(agents.c.flags).where(agents.c.id == agent_id)).scalar_one_or_none()
            flags = json.loads(raw) if raw else []
            flags.append(flag)
            conn.execute(update(agents).where(agents.c.id == agent_id).values(flags=json.dumps(flags)))
            enqueue(conn, f"agent.{flag['name']}", {"agent_id": agent_id, **flag})

    def take(self, agent_id: str, previous_owner: str | None, new_owner: str) -> bool:
        """Claims an agent from its previous owner; False when another instance was quicker."""
        owner = (
            agents.c.instance_id.is_(None)
            if previous_owner is None
            else agents.c.instance_id == previous_owner
        )
        with self._db.write() as conn:
            result = conn.execute(
                update(agents)
                .where(agents.c.id == agent_id, owner)
                .values(instance_id=new_owner, updated_at=utc_now())
            )
        return result.rowcount == 1

    def active(self, instance_id: str | None = None) -> list[AgentRow]:
        query = select(agents).where(agents.c.status.in_([s.value for s in ACTIVE_AGENT_STATUSES]))
        if instance_id is not None:
            query = query.where(agents.c.instance_id == instance_id)
        with self._db.read() as conn:
            return [decode_agent(r) for r in conn.execute(query.order_by(agents.c.created_at)).mappings()]

    def count_for_task(self, task_id: str, status: AgentStatus) -> int:
        with self._db.read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(agents)
                    .where(agents.c.task_id == task_id, agents.c.status == status.value)
                ).scalar_one()
            )

    def last_of_task(self, task_id: str) -> AgentRow | None:
        with self._db.read() as conn:
            row = conn.execute(_LAST_OF_TASK, {"t_id": task_id}).mappings().first()
        return decode_agent(row) if row is not None else None

    def ended_with_task(self, limit: int = 500) -> list[AgentRow]:
        terminal = [s.value for s in AgentStatus if s.is_terminal]
        query = (
            select(agents)
            .where(agents.c.task_id.is_not(None), agents.c.status.in_(terminal))
            .order_by(agents.c.completed_at.desc())
            .limit(limit)
        )
        with self._db.read() as conn:
            return [decode_agent(r) for r in conn.execute(query).mappings()]

    def analytics(self) -> dict[str, Any]:
        with self._db.read() as conn:
            by_status = {
                str(status): int(n)
                for status, n in conn.execute(select(agents.c.status, func.count()).group_by(agents.c.status))
            }
            by_type = {
                str(kind): int(n)
                for kind, n in conn.execute(
                    select(agents.c.agent_type, func.count()).group_by(agents.c.agent_type)
                )
            }
            totals = conn.execute(
                select(
                    func.coalesce(func.sum(agents.c.cost_usd), 0.0),
                    func.coalesce(func.sum(agents.c.input_tokens), 0),
                    func.coalesce(func.sum(agents.c.output_tokens), 0),
                    func.avg(agents.c.duration_ms),
                )
            ).one()
        finished = sum(n for s, n in by_status.items() if AgentStatus(s).is_terminal)
        completed = by_status.get(AgentStatus.COMPLETED.value, 0)
        return {
            "total": sum(by_status.values()),
            "by_status": by_status,
            "by_type": by_type,
            "success_rate": (completed / finished) if finished else None,
            "mean_duration_ms": float(totals[3]) if totals[3] is not None else None,
            "total_cost_usd": float(totals[0]),
            "total_input_tokens": int(totals[1]),
            "total_output_tokens": int(totals[2]),
        }


def _move(
    conn: Connection, agent_id: str, target: AgentStatus, owner: str | None, fields: dict[str, Any]
) -> bool:
    owned = () if owner is None else (agents.c.instance_id == owner,)
    moved = move(conn, AGENTS, agent_id, target, where=owned, **fields)
    if moved and target.is_terminal and fields.get("end_reason") == EndReason.BUDGET_EXCEEDED:
        payload = {"agent_id": agent_id, "status": target.value, "error": fields.get("error")}
        enqueue(conn, "agent.budget_exceeded", payload)
    return moved


def decode_agent(row: RowMapping) -> AgentRow:
    out = dict(row)
    raw = out.get("metadata")
    out["metadata"] = json.loads(raw) if raw else {}
    out["flags"] = json.loads(out["flags"]) if out.get("flags") else []
    out["budget"] = json.loads(out["budget"]) if out.get("budget") else None
    return out


def ids_of(rows: Iterable[AgentRow]) -> list[str]:
    return [str(r["id"]) for r in rows]
