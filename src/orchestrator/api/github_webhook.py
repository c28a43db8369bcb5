"""POST /api/github/webhook: deliveries from GitHub, which cannot send the API token, so each must carry
the HMAC-SHA256 of its body with GITHUB_WEBHOOK_SECRET (X-Hub-Signature-256), checked before anything is
parsed or written. Off (404) while no secret is set. A delivery id seen before is answered 200 and not
acted on again, nor is a body seen before under another id (the signature does not cover the id). A
delivery only says where to look: the issue or PR is read from GitHub's API. The guard caps the body at
API_MAX_BODY_BYTES before it is read."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request

from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.api.guard import GITHUB_WEBHOOK_PATH
from orchestrator.domain import github_news as news
from orchestrator.errors import Invalid, NotFound, Unauthorized
from orchestrator.services import Services

router = APIRouter(tags=["github"], responses=ERROR_RESPONSES)


@router.post(GITHUB_WEBHOOK_PATH)
async def github_webhook(request: Request) -> dict[str, str]:
    services: Services = request.app.state.services
    secret = services.settings.github_webhook_secret
    if not secret:
        raise NotFound("GitHub webhooks are off: GITHUB_WEBHOOK_SECRET is not set")
    body = await request.body()
    if not news.signed(secret, body, request.headers.get("x-hub-signature-256")):
        raise Unauthorized(
            "X-Hub-Signature-256 is missing or does not sign this body with the webhook secret"
        )
    try:
        event = news.event_name(request.headers.get("x-github-event"))
        delivery = news.delivery_id(request.headers.get("x-github-delivery"))
        payload = json.loads(body)
    except news.BadPayload as exc:
        raise Invalid(str(exc)) from None
    except (ValueError, RecursionError):
        raise Invalid("the body is not a JSON document") from None
    if not isinstance(payload, dict):
        raise Invalid("the body is not a JSON object")
    if event == "ping":
        return {"delivery": delivery, "result": "pong"}
    if not await asyncio.to_thread(services.intake_store.take_delivery, delivery, event):
        return {"delivery": delivery, "result": "a delivery seen before: ignored"}
    body_key = news.body_key(body)
    if not await asyncio.to_thread(services.intake_store.take_delivery, body_key, event):
        return {"delivery": delivery, "result": "a body delivered before under another delivery id: ignored"}
    try:
        result = await asyncio.to_thread(_react, services, event, payload)
    except news.BadPayload as exc:
        raise Invalid(str(exc)) from None  # kept as taken: the same bytes again would fail the same way
    except Exception:
        await asyncio.to_thread(services.intake_store.forget_delivery, delivery)
        await asyncio.to_thread(services.intake_store.forget_delivery, body_key)
        raise
    return {"delivery": delivery, "result": result}


def _react(services: Services, event: str, payload: dict[str, Any]) -> str:
    if event == "issues":
        return services.intake.recheck(*news.issue_number_of(payload))
    if event in news.PULL_EVENTS:
        pull = news.pull_news_of(event, payload)
        services.pull_news.poke(pull.repo, pull.pr_number, pull.head_sha)
        return f"passed on: {event} of {pull.repo}"
    return f"{event}: not an event the service acts on"
