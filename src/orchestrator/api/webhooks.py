from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from orchestrator.api.deps import ServicesDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.store.webhooks import WEBHOOK_EVENTS

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    event_types: list[str] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS))
    secret: str = Field(min_length=8, max_length=512)

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in WEBHOOK_EVENTS]
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {', '.join(WEBHOOK_EVENTS)}")
        return list(dict.fromkeys(value))


class Webhook(BaseModel):
    id: str
    url: str
    event_types: list[str]
    created_at: str


class Delivery(BaseModel):
    id: int
    webhook_id: str
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: str
    created_at: str
    delivered_at: str | None
    last_status_code: int | None
    last_error: str | None
    attempt_log: list[dict[str, Any]]


@router.post("", response_model=Webhook, status_code=201)
def create_webhook(body: WebhookCreate, services: ServicesDep) -> Webhook:
    hook = services.webhook_store.create(
        f"wh-{secrets.token_hex(6)}", str(body.url), body.event_types, body.secret
    )
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
