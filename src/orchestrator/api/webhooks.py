from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from orchestrator.api.deps import WebhooksDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.models import Delivery, Webhook, WebhookCreate

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


@router.post("", response_model=Webhook, status_code=201)
def create_webhook(body: WebhookCreate, webhooks: WebhooksDep) -> Webhook:
    return Webhook.model_validate(webhooks.create(str(body.url), body.event_types, body.secret))


@router.get("", response_model=list[Webhook])
def list_webhooks(webhooks: WebhooksDep) -> list[Webhook]:
    return [Webhook.model_validate(h) for h in webhooks.all()]


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
def delete_webhook(webhook_id: str, webhooks: WebhooksDep) -> Response:
    webhooks.delete(webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=list[Delivery])
def deliveries(
    webhook_id: str, webhooks: WebhooksDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[Delivery]:
    return [Delivery.model_validate(d) for d in webhooks.deliveries(webhook_id, limit)]
