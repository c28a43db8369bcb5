"""Dependencies of the routers: the services built by the app, the API token check, and the services
that hold the rules of each group of routes. All `async` (none does I/O): a plain `def` dependency costs
a hop to a worker thread and back on every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from orchestrator.agents.live_log import LiveLog
from orchestrator.agents.profiles import ProfileRequests
from orchestrator.agents.service import AgentRequests
from orchestrator.api.guard import WRONG_TOKEN, bearer_matches
from orchestrator.errors import Unauthorized
from orchestrator.services import Services
from orchestrator.tasks.approval import ApprovalService
from orchestrator.tasks.queue_control import QueueControl
from orchestrator.tasks.service import TaskService
from orchestrator.webhooks.registry import WebhookRegistry
from orchestrator.workflow.event_service import EventService


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services(request: Request) -> Services:
    """The dependency form: `async`, so FastAPI runs it on the loop instead of in a worker thread."""
    return get_services(request)


ServicesDep = Annotated[Services, Depends(_services)]


def is_authorized(request: Request) -> bool:
    return bearer_matches(request.headers.get("authorization"), get_services(request).settings.api_token)


async def require_token(request: Request) -> None:
    """The routers' own check, behind the one the guard middleware makes before the body is read."""
    if not is_authorized(request):
        raise Unauthorized(WRONG_TOKEN, challenge="Bearer")


Authorized = Depends(require_token)


async def task_service(services: ServicesDep) -> TaskService:
    return TaskService(services.task_store)


async def queue_control(services: ServicesDep) -> QueueControl:
    return QueueControl(services.queue_store, services.queue.wake)


async def agent_requests(services: ServicesDep) -> AgentRequests:
    return AgentRequests(
        services.agent_store,
        services.task_store,
        services.agents,
        services.spawn_rate,
        services.profile_store,
    )


async def live_log(services: ServicesDep) -> LiveLog:
    return LiveLog(services.log_store, services.agent_store, services.bus, services.agents.supervises)


async def webhook_registry(services: ServicesDep) -> WebhookRegistry:
    return WebhookRegistry(services.webhook_store, services.settings.webhook_policy)


async def event_service(services: ServicesDep) -> EventService:
    return EventService(services.event_store, services.task_store, services.events.wake)


def approval_service(services: ServicesDep) -> ApprovalService:
    return ApprovalService(services.task_store, services.event_store, services.events.wake)


TasksDep = Annotated[TaskService, Depends(task_service)]
ApprovalDep = Annotated[ApprovalService, Depends(approval_service)]
QueueDep = Annotated[QueueControl, Depends(queue_control)]
AgentsDep = Annotated[AgentRequests, Depends(agent_requests)]
LiveLogDep = Annotated[LiveLog, Depends(live_log)]
WebhooksDep = Annotated[WebhookRegistry, Depends(webhook_registry)]
EventsDep = Annotated[EventService, Depends(event_service)]


async def profile_requests(services: ServicesDep) -> ProfileRequests:
    return ProfileRequests(services.profile_store, services.settings.mcp_env_names)


ProfilesDep = Annotated[ProfileRequests, Depends(profile_requests)]
