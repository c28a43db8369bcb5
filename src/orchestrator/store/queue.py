"""The queue: items, settings, and the atomic claim of the next item."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from orchestrator.clock import utc_now
from orchestrator.domain.lifecycles import QUEUE_ITEMS
from orchestrator.domain.queue_rules import (
    QueueSettings,
    busy_repositories,
    choose_next,
    dependency_state,
    has_room,
    repositories_of,
    settings_from_rows,
    takes_the_last_slot,
)
from orchestrator.domain.types import QueueItemStatus, TaskStatus
from orchestrator.errors import Conflict, NotFound
from orchestrator.store.db import Database
from orchestrator.store.moves import move
from orchestrator.store.outbox import enqueue
from orchestrator.store.tables import agents, queue, queue_settings, tasks
from orchestrator.store.tasks import move_task

ACTIVE_ITEM = (QueueItemStatus.QUEUED.value, QueueItemStatus.PROCESSING.value)
DONE_ITEM = (QueueItemStatus.COMPLETED.value, QueueItemStatus.FAILED.value)
_PAGE = 200
_LOCK_ROW = "max_concurrent"

# The statements of every claim and end, built once (building one costs more than running it)
_LOCK = select(queue_settings.c.value).where(queue_settings.c.key == _LOCK_ROW).with_for_update()
_ALL_SETTINGS = select(queue_settings.c.key, queue_settings.c.value)
_PROCESSING_COUNT = (
    select(func.count()).select_from(queue).where(queue.c.status == QueueItemStatus.PROCESSING.value)
)
_QUEUED_IN_START_ORDER = (
    select(
        queue.c.id,
        queue.c.position,
        queue.c.task_id,
        queue.c.retry_at,
        queue.c.blocked_reason,
        tasks.c.priority,
        tasks.c.depends_on,
        tasks.c.repo,
        tasks.c.repos,
    )
    .select_from(queue.join(tasks, tasks.c.id == queue.c.task_id))
    .where(queue.c.status == QueueItemStatus.QUEUED.value)
    .order_by(tasks.c.priority.desc(), queue.c.position, queue.c.id)
    .limit(_PAGE)
)
_TASK_OF_ITEM = select(queue.c.task_id).where(queue.c.id == bindparam("q_id"))
_PROCESSING_ITEM_OF_AGENT = select(queue).where(
    queue.c.agent_id == bindparam("a_id"), queue.c.status == QueueItemStatus.PROCESSING.value
)


class QueueConflict(Conflict):
    """The request does not fit the item's state; the message says why."""


class QueueNotFound(NotFound):
    pass


@dataclass(frozen=True)
class Claimed:
    id: int
    task_id: str
    position: int
    agent_id: str
    last_slot: bool = False  # no other item can start until one ends (or a setting changes)


@dataclass(frozen=True)
class _Candidate:
    id: int
    position: int
    task_id: str
    priority: int
    ready: bool
    blocked_reason: str | None


def _settings(conn: Connection) -> QueueSettings:
    rows = {k: v for k, v in conn.execute(_ALL_SETTINGS)}
    return settings_from_rows(rows)


def _put_setting(conn: Connection, key: str, value: str | None) -> None:
    """Updates a setting in place: the `max_concurrent` row is the lock every claim takes, so it is
    never deleted and inserted again (a claim waiting on the old row would then go on unlocked)."""
    if value is None:
        conn.execute(
            delete(queue_settings).where(queue_settings.c.key == key, queue_settings.c.key != _LOCK_ROW)
        )
        return
    changed = conn.execute(
        update(queue_settings).where(queue_settings.c.key == key).values(value=value)
    ).rowcount
    if not changed:
        conn.execute(insert(queue_settings).values(key=key, value=value))


def _back_to_queue(
    conn: Connection, item_id: int, retry_at: str | None, reason: str, *guards: ColumnElement[bool]
) -> bool:
    """A processing item queued again, to wait until `retry_at` if given, with nobody working on it."""
    return move(
        conn,
        QUEUE_ITEMS,
        item_id,
        QueueItemStatus.QUEUED,
        where=guards,
        agent_id=None,
        instance_id=None,
        started_at=None,
        retry_at=retry_at,
        error=reason,
    )


PAUSED_BY_REQUEST = "paused through the API"


class QueueStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def settings(self) -> QueueSettings:
        with self._db.read() as conn:
            return _settings(conn)

    def set_setting(self, key: str, value: str) -> QueueSettings:
        with self._db.write() as conn:
            was_paused = _settings(conn).paused
            _put_setting(conn, key, value)
            if key == "paused" and value == "true" and not was_paused:
                _put_setting(conn, "pause_reason", PAUSED_BY_REQUEST)
                enqueue(conn, "queue.paused", {"reason": PAUSED_BY_REQUEST})
            if key == "paused" and value == "false":
                _put_setting(conn, "pause_reason", None)
                _put_setting(conn, "parked_until", None)
                conn.execute(
                    update(queue)
                    .where(queue.c.status == QueueItemStatus.QUEUED.value, queue.c.retry_at.is_not(None))
                    .values(retry_at=None)
                )
            return _settings(conn)

    def pause(self, reason: str) -> None:
        with self._db.write() as conn:
            _put_setting(conn, "paused", "true")
            _put_setting(conn, "pause_reason", reason)
            enqueue(conn, "queue.paused", {"reason": reason})

    def add(self, task_id: str) -> dict[str, Any]:
        with self._db.write() as conn:
            status = conn.execute(select(tasks.c.status).where(tasks.c.id == task_id)).scalar_one_or_none()
            if status is None:
                raise QueueNotFound(f"task {task_id!r} not found")
            active = conn.execute(
                select(queue.c.id).where(queue.c.task_id == task_id, queue.c.status.in_(ACTIVE_ITEM))
            ).first()
            if active is not None:
                raise QueueConflict(f"task {task_id} is already in the queue")
            if not move_task(conn, task_id, TaskStatus.QUEUED):
                raise QueueConflict(f"task {task_id} is {status}: it cannot be queued")
            last = conn.execute(select(func.max(queue.c.position))).scalar_one_or_none()
            position = (last or 0) + 1
            item_id = conn.execute(
                insert(queue).values(
                    task_id=task_id,
                    position=position,
                    status=QUEUE_ITEMS.initial.value,
                    queued_at=utc_now(),
                )
            ).inserted_primary_key
            assert item_id is not None
            row = conn.execute(select(queue).where(queue.c.id == item_id[0])).mappings().one()
        return dict(row)

    def remove(self, task_id: str) -> None:
        with self._db.write() as conn:
            item = conn.execute(
                select(queue.c.id, queue.c.status).where(
                    queue.c.task_id == task_id, queue.c.status.in_(ACTIVE_ITEM)
                )
            ).first()
            if item is None:
                raise QueueNotFound(f"task {task_id!r} is not in the queue")
            if item.status == QueueItemStatus.PROCESSING.value:
                raise QueueConflict(f"task {task_id} is being processed: kill its agent instead")
            conn.execute(delete(queue).where(queue.c.id == item.id))
            move_task(conn, task_id, TaskStatus.PENDING)

    def claim_next(self, instance_id: str, new_agent_id: Any) -> Claimed | None:
        """Takes the next startable item in one transaction; its agent id is fixed before any spawn."""
        with self._db.write() as conn:
            conn.execute(_LOCK).all()
            settings = _settings(conn)
            processing = conn.execute(_PROCESSING_COUNT).scalar_one()
            now = utc_now()
            busy = self._busy_repos(conn) if settings.max_concurrent_per_repo else {}
            may_start = not settings.paused and processing < settings.max_concurrent
            after: tuple[int, int, int] | None = None
            while True:
                page, after = self._candidates(conn, settings, now, busy, after)
                chosen = choose_next(settings, int(processing), page)
                if chosen is not None or after is None or not may_start:
                    break
            if chosen is None:
                return None
            agent_id = str(new_agent_id())
            if not move(
                conn,
                QUEUE_ITEMS,
                chosen.id,
                QueueItemStatus.PROCESSING,
                started_at=utc_now(),
                agent_id=agent_id,
                instance_id=instance_id,
            ):
                return None
            move_task(conn, chosen.task_id, TaskStatus.ASSIGNED, assigned_agent_id=agent_id)
        last_slot = takes_the_last_slot(settings, int(processing))
        return Claimed(chosen.id, chosen.task_id, chosen.position, agent_id, last_slot)

    @staticmethod
    def _busy_repos(conn: Connection) -> dict[str, int]:
        return busy_repositories(
            [
                repositories_of(repo, json.loads(repos) if repos else [])
                for repo, repos in conn.execute(
                    select(tasks.c.repo, tasks.c.repos)
                    .select_from(queue.join(tasks, tasks.c.id == queue.c.task_id))
                    .where(queue.c.status == QueueItemStatus.PROCESSING.value)
                )
            ]
        )

    @staticmethod
    def _candidates(
        conn: Connection,
        settings: QueueSettings,
        now: str,
        busy_repos: dict[str, int],
        after: tuple[int, int, int] | None,
    ) -> tuple[list[_Candidate], tuple[int, int, int] | None]:
        """One page of queued items in start order (highest priority, then oldest), with what decides
        whether they start: dependencies, retry time, room in their repository. Also the key of the
        page's last item when more may follow, so a queue of any length is looked at whole."""
        query = _QUEUED_IN_START_ORDER
        if after is not None:
            priority, position, item_id = after
            query = query.where(
                or_(
                    tasks.c.priority < priority,
                    and_(
                        tasks.c.priority == priority,
                        or_(
                            queue.c.position > position,
                            and_(queue.c.position == position, queue.c.id > item_id),
                        ),
                    ),
                )
            )
        rows = conn.execute(query).all()
        deps = {r.task_id: json.loads(r.depends_on) if r.depends_on else [] for r in rows}
        wanted = {d for ds in deps.values() for d in ds}
        statuses = (
            {
                str(i): str(st)
                for i, st in conn.execute(select(tasks.c.id, tasks.c.status).where(tasks.c.id.in_(wanted)))
            }
            if wanted
            else {}
        )
        out = []
        for r in rows:
            ready, why = dependency_state({d: statuses.get(d) for d in deps[r.task_id]})
            if why != r.blocked_reason:
                conn.execute(update(queue).where(queue.c.id == r.id).values(blocked_reason=why))
            repositories = repositories_of(r.repo, json.loads(r.repos) if r.repos else [])
            room = has_room(repositories, busy_repos, settings.max_concurrent_per_repo)
            due = r.retry_at is None or r.retry_at <= now
            out.append(_Candidate(r.id, r.position, r.task_id, int(r.priority), ready and room and due, why))
        last = rows[-1] if len(rows) == _PAGE else None
        return out, (int(last.priority), int(last.position), int(last.id)) if last is not None else None

    def finish(self, item_id: int, ok: bool, error: str | None) -> bool:
        """Ends a processing item and its task; False if it had already ended."""
        status = QueueItemStatus.COMPLETED if ok else QueueItemStatus.FAILED
        with self._db.write() as conn:
            row = conn.execute(_TASK_OF_ITEM, {"q_id": item_id}).first()
            done = move(conn, QUEUE_ITEMS, item_id, status, completed_at=utc_now(), error=error)
            if done and row is not None:
                move_task(
                    conn,
                    row.task_id,
                    TaskStatus.COMPLETED if ok else TaskStatus.FAILED,
                    error=error if not ok else None,
                )
        return done

    def requeue(
        self,
        item_id: int,
        owner: str | None,
        reason: str,
        retry_at: str | None = None,
        *,
        unless_started: bool = False,
    ) -> bool:
        """Puts a processing item of `owner` back in the queue (to wait until `retry_at`, if given);
        False if it moved on meanwhile, or, `unless_started`, if its agent has come to exist."""
        guards = [queue.c.instance_id.is_(None) if owner is None else queue.c.instance_id == owner]
        if unless_started:
            guards.append(~exists().where(agents.c.id == queue.c.agent_id))
        with self._db.write() as conn:
            row = conn.execute(select(queue.c.task_id).where(queue.c.id == item_id)).first()
            done = _back_to_queue(conn, item_id, retry_at, reason, *guards)
            if done and row is not None:
                move_task(conn, row.task_id, TaskStatus.QUEUED, assigned_agent_id=None)
        return done

    def park(self, item_id: int, retry_at: str, reason: str) -> bool:
        """Back to the queue until `retry_at`; the rest of the queue goes on (and what depends on the
        item waits for it to complete, as always)."""
        with self._db.write() as conn:
            row = conn.execute(select(queue.c.task_id).where(queue.c.id == item_id)).first()
            done = _back_to_queue(conn, item_id, retry_at, reason)
            if done and row is not None:
                move_task(conn, row.task_id, TaskStatus.QUEUED, assigned_agent_id=None)
        return done

    def next_due_in(self) -> float | None:
        """Seconds until a parked or waiting item may start again."""
        with self._db.read() as conn:
            soonest = conn.execute(
                select(func.min(queue.c.retry_at)).where(queue.c.status == QueueItemStatus.QUEUED.value)
            ).scalar_one_or_none()
        if not soonest:
            return None
        due = datetime.fromisoformat(str(soonest).replace("Z", "+00:00"))
        return max(0.0, (due - datetime.now(UTC)).total_seconds())

    def processing(self) -> list[dict[str, Any]]:
        with self._db.read() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    select(queue).where(queue.c.status == QueueItemStatus.PROCESSING.value)
                ).mappings()
            ]

    def processing_item_of_task(self, task_id: str) -> dict[str, Any] | None:
        with self._db.read() as conn:
            row = (
                conn.execute(
                    select(queue).where(
                        queue.c.task_id == task_id, queue.c.status == QueueItemStatus.PROCESSING.value
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    def item_for_agent(self, agent_id: str) -> dict[str, Any] | None:
        with self._db.read() as conn:
            row = conn.execute(_PROCESSING_ITEM_OF_AGENT, {"a_id": agent_id}).mappings().first()
        return dict(row) if row is not None else None

    def items(self, *, completed_limit: int = 50) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        columns = [*queue.c, tasks.c.title.label("title")]
        joined = queue.join(tasks, tasks.c.id == queue.c.task_id, isouter=True)
        with self._db.read() as conn:
            active = [
                dict(r)
                for r in conn.execute(
                    select(*columns)
                    .select_from(joined)
                    .where(queue.c.status.in_(ACTIVE_ITEM))
                    .order_by(queue.c.position, queue.c.id)
                ).mappings()
            ]
            done = [
                dict(r)
                for r in conn.execute(
                    select(*columns)
                    .select_from(joined)
                    .where(queue.c.status.in_(DONE_ITEM))
                    .order_by(queue.c.completed_at.desc(), queue.c.id.desc())
                    .limit(completed_limit)
                ).mappings()
            ]
        return active, done

    def clear_done(self) -> int:
        with self._db.write() as conn:
            return int(conn.execute(delete(queue).where(queue.c.status.in_(DONE_ITEM))).rowcount)
