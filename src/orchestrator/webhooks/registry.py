"""The webhooks the API registers: a target the policy allows, at most MAX_WEBHOOKS of them."""

from __future__ import annotations

import secrets
from typing import Any

from orchestrator.errors import Conflict, Invalid, NotFound
from orchestrator.store.webhooks import WebhookStore
from orchestrator.webhooks.resolve import vet
from orchestrator.webhooks.targets import TargetPolicy, TargetRefused

MAX_WEBHOOKS = 50


class WebhookRegistry:
    def __init__(self, store: WebhookStore, policy: TargetPolicy) -> None:
        self._store = store
        self._policy = policy

    def create(self, url: str, event_types: list[str], secret: str) -> dict[str, Any]:
        try:
            vet(url, self._policy)
        except TargetRefused as exc:
            raise Invalid(exc.message, field="url") from None
        if self._store.count() >= MAX_WEBHOOKS:
            raise Conflict(f"at most {MAX_WEBHOOKS} webhooks; delete one first")
        return self._store.create(f"wh-{secrets.token_hex(6)}", url, event_types, secret)

    def all(self) -> list[dict[str, Any]]:
        return self._store.all()

    def delete(self, hook_id: str) -> None:
        if not self._store.delete(hook_id):
            raise NotFound(f"webhook {hook_id!r} not found")

    def deliveries(self, hook_id: str, limit: int) -> list[dict[str, Any]]:
        if self._store.get(hook_id) is None:
            raise NotFound(f"webhook {hook_id!r} not found")
        return self._store.deliveries(hook_id, limit)
