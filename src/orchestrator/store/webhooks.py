"""Webhooks and their deliveries: `expand` turns the events `outbox.enqueue` stored into a delivery per
subscribed webhook, outside the change's transaction; instances lease due deliveries and record outcomes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, delete, exists, func, insert, or_, select, update

from orchestrator.clock import utc_now
from orchestrator.domain.lifecycles import WEBHOOK_DELIVERIES
from orchestrator.domain.types import DeliveryStatus
from orchestrator.store.db import Database
from orchestrator.store.moves import move
from orchestrator.store.outbox import enqueue as enqueue
from orchestrator.store.outbox import subscribers
from orchestrator.store.tables import instances, webhook_deliveries, webhook_events, webhooks

# asked at every look of the deliverer while the database changes: built once (building it cost more than
# running it)
_HAS_WORK = select(
    exists(select(webhook_events.c.id))
    | exists(
        select(webhook_deliveries.c.id).where(webhook_deliveries.c.status == DeliveryStatus.PENDING.value)
    )
)


def _later(seconds: float) -> str:
    return (
        (datetime.now(UTC) + timedelta(seconds=seconds))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, hook_id: str, url: str, event_types: list[str], secret: str) -> dict[str, Any]:
        with self._db.write() as conn:
            conn.execute(
                insert(webhooks).values(
                    id=hook_id,
                    url=url,
                    event_types=json.dumps(event_types),
                    secret=secret,
                    created_at=utc_now(),
                )
            )
        found = self.get(hook_id)
        assert found is not None
        return found

    def get(self, hook_id: str) -> dict[str, Any] | None:
        with self._db.read() as conn:
            row = conn.execute(select(webhooks).where(webhooks.c.id == hook_id)).mappings().first()
        return _hook(row) if row is not None else None

    def all(self) -> list[dict[str, Any]]:
        with self._db.read() as conn:
            return [
                _hook(r) for r in conn.execute(select(webhooks).order_by(webhooks.c.created_at)).mappings()
            ]

    def delete(self, hook_id: str) -> bool:
        with self._db.write() as conn:
            conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == hook_id))
            return bool(conn.execute(delete(webhooks).where(webhooks.c.id == hook_id)).rowcount)

    def deliveries(self, hook_id: str, limit: int) -> list[dict[str, Any]]:
        with self._db.read() as conn:
            rows = conn.execute(
                select(webhook_deliveries)
                .where(webhook_deliveries.c.webhook_id == hook_id)
                .order_by(webhook_deliveries.c.id.desc())
                .limit(limit)
            ).mappings()
            return [_delivery(r) for r in rows]

    def expand(self, limit: int = 100) -> int:
        """Turns stored events into one pending delivery per webhook subscribed now; each event is taken
        by the one instance whose DELETE removed it. The number of deliveries made."""
        with self._db.read() as conn:
            if conn.execute(select(webhook_events.c.id).limit(1)).first() is None:
                return 0
        made = 0
        with self._db.write() as conn:
            events = conn.execute(select(webhook_events).order_by(webhook_events.c.id).limit(limit)).all()
            for event in events:
                if conn.execute(delete(webhook_events).where(webhook_events.c.id == event.id)).rowcount != 1:
                    continue
                now = utc_now()
                for hook_id in subscribers(conn, event.event_type):
                    conn.execute(
                        insert(webhook_deliveries).values(
                            webhook_id=hook_id,
                            event_type=event.event_type,
                            payload=event.payload,
                            status=WEBHOOK_DELIVERIES.initial.value,
                            next_attempt_at=now,
                            created_at=now,
                        )
                    )
                    made += 1
        return made

    def has_work(self) -> bool:
        """Whether an event waits to be expanded or a delivery is pending (due now or later); one read."""
        with self._db.read() as conn:
            return bool(conn.execute(_HAS_WORK).scalar())

    def count(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(webhooks)).scalar_one())

    def claim_due(
        self, owner: str, lease_seconds: float, lapse_seconds: float, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Pending deliveries whose time has come, each leased to `owner` by one conditional UPDATE whose
        row count says who won, with their webhook's url and secret. Another instance takes a leased
        delivery once the lease has run out, or sooner when its holder stopped or its heartbeat lapsed."""
        now = utc_now()
        gone = select(instances.c.id).where(
            or_(instances.c.stopped_at.is_not(None), instances.c.heartbeat_at < _later(-lapse_seconds))
        )
        free = (
            webhook_deliveries.c.status == DeliveryStatus.PENDING.value,
            webhook_deliveries.c.next_attempt_at <= now,
            or_(
                webhook_deliveries.c.lease_until.is_(None),
                webhook_deliveries.c.lease_until < now,
                webhook_deliveries.c.lease_owner.in_(gone),
            ),
        )
        with self._db.read() as conn:
            candidates = list(
                conn.execute(
                    select(webhook_deliveries.c.id)
                    .where(*free)
                    .order_by(webhook_deliveries.c.id)
                    .limit(limit)
                ).scalars()
            )
        if not candidates:
            return []
        with self._db.write() as conn:
            claimed = [
                delivery_id
                for delivery_id in candidates
                if conn.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.id == delivery_id, *free)
                    .values(lease_owner=owner, lease_until=_later(lease_seconds))
                ).rowcount
                == 1
            ]
            if not claimed:
                return []
            query = (
                select(webhook_deliveries, webhooks.c.url, webhooks.c.secret)
                .select_from(
                    webhook_deliveries.join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
                )
                .where(webhook_deliveries.c.id.in_(claimed))
                .order_by(webhook_deliveries.c.id)
            )
            return [dict(r) for r in conn.execute(query).mappings()]

    def record(
        self,
        delivery_id: int,
        owner: str,
        *,
        ok: bool,
        code: int | None,
        error: str | None,
        retry_in: float | None,
    ) -> bool:
        """Stores an attempt's outcome and ends the lease; False (nothing stored) when `owner` no longer
        holds the lease."""
        with self._db.write() as conn:
            row = conn.execute(
                select(webhook_deliveries.c.attempts, webhook_deliveries.c.attempt_log).where(
                    webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.lease_owner == owner
                )
            ).first()
            if row is None:
                return False
            log = json.loads(row.attempt_log) if row.attempt_log else []
            log.append({"at": utc_now(), "status_code": code, "error": error})
            status = (
                DeliveryStatus.DELIVERED
                if ok
                else (DeliveryStatus.PENDING if retry_in is not None else DeliveryStatus.FAILED)
            )
            return move(
                conn,
                WEBHOOK_DELIVERIES,
                delivery_id,
                status,
                where=(webhook_deliveries.c.lease_owner == owner,),
                attempts=row.attempts + 1,
                last_status_code=code,
                last_error=error,
                attempt_log=json.dumps(log[-20:]),
                delivered_at=utc_now() if ok else None,
                next_attempt_at=_later(retry_in) if retry_in is not None else utc_now(),
                lease_owner=None,
                lease_until=None,
            )


def _hook(row: RowMapping | Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in dict(row).items() if k != "secret"}
    out["event_types"] = json.loads(out["event_types"])
    return out


def _delivery(row: RowMapping | Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["payload"] = json.loads(out["payload"])
    out["attempt_log"] = json.loads(out["attempt_log"]) if out.get("attempt_log") else []
    return out
