from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from orchestrator.api.deps import ServicesDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.models import Delivery, Webhook, WebhookCreate
from orchestrator.webhooks.resolve import vet
from orchestrator.webhooks.targets import TargetRefused

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


MAX_WEBHOOKS = 50


@router.post("", response_model=Webhook, status_code=201)
def create_webhook(body: WebhookCreate, services: ServicesDep) -> Webhook:
    url = str(body.url)
    try:
        vet(url, services.settings.webhook_policy)
    except TargetRefused as exc:
        raise HTTPException(422, f"url: {exc}") from None
    if services.webhook_store.count() >= MAX_WEBHOOKS:
        raise HTTPException(409, f"at most {MAX_WEBHOOKS} webhooks; delete one first")
    hook = services.webhook_store.create(f"wh-{secrets.token_hex(6)}", url, body.event_types, body.secret)
    return Webhook.model_validate(hook)


@router.get("", response_model=list[Webhook])
def list_webhooks(services: ServicesDep) -> list[Webhook]:
    return [Webhook.model_validate(h) for h in services.webhook_store.all()]


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
def delete_webhook(webhook_id: str, services: ServicesDep) -> Response:
    if not services.webhook_store.delete(webhook_id):
        raise HTTPException(404, f"webhook {webhook_id!r} not found")
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=list[Delivery])
def deliveries(
    webhook_id: str, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[Delivery]:
    if services.webhook_store.get(webhook_id) is None:
        raise HTTPException(404, f"webhook {webhook_id!r} not found")
    return [Delivery.model_validate(d) for d in services.webhook_store.deliveries(webhook_id, limit)]
