"""The webhooks' outbox. `enqueue` runs inside the transaction of the change it reports, so a change and
its notification are stored together or not at all; it writes one event row, and `WebhookStore.expand`
later turns it into a delivery per subscribed webhook, outside the change's transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, select

from orchestrator.clock import utc_now
from orchestrator.store.tables import webhook_events, webhooks

_ALL_HOOKS = select(webhooks.c.id, webhooks.c.event_types)


def subscribers(conn: Connection, event_type: str) -> list[str]:
    return [hook_id for hook_id, types in conn.execute(_ALL_HOOKS) if event_type in json.loads(types)]


def enqueue(conn: Connection, event_type: str, payload: Mapping[str, Any]) -> int:
    """Stores the event for the webhooks that want `event_type` (none: nothing); call inside the change's
    transaction."""
    if not subscribers(conn, event_type):
        return 0
    now = utc_now()
    conn.execute(
        insert(webhook_events).values(
            event_type=event_type,
            payload=json.dumps({"type": event_type, "at": now, "data": dict(payload)}, default=str),
            created_at=now,
        )
    )
    return 1
