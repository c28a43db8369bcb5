"""Every endpoint as a `Call`: method, path, parameters, body, how to read the answer, whether it is safe
to repeat. `Client` and `AsyncClient` only send them; a new endpoint is one function here and a one-line
method on each client."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from orchestrator.client.errors import InvalidRequest
from orchestrator.domain.events import EventStatus, EventType
from orchestrator.domain.types import AgentStatus, AgentType, TaskStatus
from orchestrator.forge.models import (
    CloneUrl,
    CreatedPullRequest,
    DefaultBranch,
    MergeMethod,
    MergeResult,
    PullRequest,
    PullState,
    PushResult,
    RemoteResult,
    RepoInfo,
    TokenStatus,
)
from orchestrator.models import (
    ActiveAgents,
    AgentDetail,
    AgentPage,
    Analytics,
    Cleared,
    Event,
    EventPage,
    Health,
    LogPage,
    QueueItem,
    QueueSettingsModel,
    QueueStatus,
    Task,
    TaskDetail,
    TaskPage,
    TaskUpdate,
    Webhook,
)
from orchestrator.models import Delivery as WebhookDelivery
from orchestrator.models import ProfileModel as Profile
from orchestrator.stats_models import Stats
from orchestrator.task_page_models import DiffPage, TaskTimeline

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

Params = dict[str, str | int]


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Params | None = None
    json: Any = None
    idempotent: bool = False


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        return model.model_validate_json(response.content)

    return parse


def _list_of(model: type[M]) -> Callable[[httpx.Response], list[M]]:
    adapter = TypeAdapter(list[model])  # type: ignore[valid-type]

    def parse(response: httpx.Response) -> list[M]:
        items: list[M] = adapter.validate_json(response.content)
        return items

    return parse


def _nothing(_: httpx.Response) -> None:
    return None


_DOT_SEGMENTS = frozenset({".", ".."})


def _segment(value: str) -> str:
    # Quoting leaves "." and "..": the URL parser would resolve them into another route
    # (e.g. task "..", approve: POST /api/approve). Refused before anything is sent.
    if value in _DOT_SEGMENTS:
        raise InvalidRequest(f"{value!r} is not an id")
    return quote(value, safe="")


def _repo(value: str) -> str:
    """`owner/name` or `name`: the slash stays, it is part of the route."""
    stripped = value.strip("/")
    if any(part in _DOT_SEGMENTS for part in stripped.split("/")):
        raise InvalidRequest(f"{value!r} is not a repository name")
    return quote(stripped, safe="/")


def _value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _params(**values: Any) -> Params:
    return {k: _value(v) for k, v in values.items() if v is not None}


def _body(**values: Any) -> dict[str, Any]:
    return {k: _value(v) for k, v in values.items() if v is not None}


def _get(path: str, parse: Callable[[httpx.Response], T], params: Params | None = None) -> Call[T]:
    return Call("GET", path, parse, params=params, idempotent=True)


# health


def health() -> Call[Health]:
    return _get("/api/health", _model(Health))


# agents


def list_agents(
    status: AgentStatus | str | None,
    agent_type: AgentType | str | None,
    task_id: str | None,
    limit: int,
    offset: int,
) -> Call[AgentPage]:
    params = _params(status=status, agent_type=agent_type, task_id=task_id, limit=limit, offset=offset)
    return _get("/api/agents", _model(AgentPage), params)


def active_agents() -> Call[ActiveAgents]:
    return _get("/api/agents/active", _model(ActiveAgents))


def analytics() -> Call[Analytics]:
    return _get("/api/agents/analytics", _model(Analytics))


def get_agent(agent_id: str) -> Call[AgentDetail]:
    return _get(f"/api/agents/{_segment(agent_id)}", _model(AgentDetail))


def logs_path(agent_id: str) -> str:
    return f"/api/agents/{_segment(agent_id)}/logs"


def agent_logs(agent_id: str, after: int, limit: int) -> Call[LogPage]:
    return _get(logs_path(agent_id), _model(LogPage), _params(after=after, limit=limit))


def spawn(
    agent_type: AgentType | str,
    prompt: str | None,
    task_id: str | None,
    repo: str | None,
    model: str | None,
    timeout_seconds: float | None,
    max_turns: int | None,
    budget: Mapping[str, float] | None = None,
    profile: str | None = None,
) -> Call[AgentDetail]:
    body = _body(
        agent_type=agent_type,
        prompt=prompt,
        task_id=task_id,
        repo=repo,
        model=model,
        timeout_seconds=timeout_seconds,
        max_turns=max_turns,
        budget=dict(budget) if budget else None,
        profile=profile,
    )
    return Call("POST", "/api/agents/spawn", _model(AgentDetail), json=body)


def kill(agent_id: str) -> Call[AgentDetail]:
    return Call("POST", f"/api/agents/{_segment(agent_id)}/kill", _model(AgentDetail))


def retry(agent_id: str, resume: bool = False) -> Call[AgentDetail]:
    return Call(
        "POST", f"/api/agents/{_segment(agent_id)}/retry", _model(AgentDetail), json={"resume": resume}
    )


# tasks


def create_task(
    title: str,
    task_id: str | None,
    description: str | None,
    repo: str | None,
    repos: list[str] | None,
    priority: int | None,
) -> Call[Task]:
    body = _body(id=task_id, title=title, description=description, repo=repo, repos=repos, priority=priority)
    return Call("POST", "/api/tasks", _model(Task), json=body)


def list_tasks(status: TaskStatus | str | None, limit: int, offset: int) -> Call[TaskPage]:
    return _get("/api/tasks", _model(TaskPage), _params(status=status, limit=limit, offset=offset))


def get_task(task_id: str) -> Call[TaskDetail]:
    return _get(f"/api/tasks/{_segment(task_id)}", _model(TaskDetail))


def update_task(task_id: str, changes: TaskUpdate | Mapping[str, Any]) -> Call[Task]:
    """`changes`: a `TaskUpdate` (only the fields set are sent) or a mapping sent as it is."""
    body = (
        changes.model_dump(mode="json", exclude_unset=True)
        if isinstance(changes, TaskUpdate)
        else {k: _value(v) for k, v in changes.items()}
    )
    return Call("PATCH", f"/api/tasks/{_segment(task_id)}", _model(Task), json=body)


def delete_task(task_id: str) -> Call[None]:
    return Call("DELETE", f"/api/tasks/{_segment(task_id)}", _nothing)


def task_timeline(task_id: str) -> Call[TaskTimeline]:
    return _get(f"/api/tasks/{_segment(task_id)}/timeline", _model(TaskTimeline))


def task_diff(task_id: str, page: int = 1) -> Call[DiffPage]:
    return _get(f"/api/tasks/{_segment(task_id)}/diff", _model(DiffPage), _params(page=page))


def approve_task(task_id: str) -> Call[Task]:
    return Call("POST", f"/api/tasks/{_segment(task_id)}/approve", _model(Task))


def reject_task(task_id: str, reason: str) -> Call[Task]:
    return Call("POST", f"/api/tasks/{_segment(task_id)}/reject", _model(Task), json={"reason": reason})


# queue


def queue_status() -> Call[QueueStatus]:
    return _get("/api/queue", _model(QueueStatus))


def queue_settings() -> Call[QueueSettingsModel]:
    return _get("/api/queue/settings", _model(QueueSettingsModel))


def set_queue_setting(key: str, value: bool | int | str) -> Call[QueueSettingsModel]:
    # Setting a key to a value twice is the same as once: safe to retry.
    return Call(
        "POST",
        "/api/queue/settings",
        _model(QueueSettingsModel),
        json={"key": key, "value": value},
        idempotent=True,
    )


def queue_add(task_id: str) -> Call[QueueItem]:
    return Call("POST", f"/api/queue/add/{_segment(task_id)}", _model(QueueItem))


def queue_remove(task_id: str) -> Call[QueueStatus]:
    return Call("DELETE", f"/api/queue/{_segment(task_id)}", _model(QueueStatus))


def queue_clear() -> Call[Cleared]:
    return Call("POST", "/api/queue/clear", _model(Cleared))


# events


def list_events(
    event_type: EventType | str | None,
    task_id: str | None,
    status: EventStatus | str | None,
    limit: int,
    offset: int,
    which: str = "",
) -> Call[EventPage]:
    """`which`: "" for all (filtered), "pending" (pending, processing), "processed" (processed, failed)."""
    params = _params(task_id=task_id, limit=limit, offset=offset)
    if not which:
        params.update(_params(type=event_type, status=status))
    return _get(f"/api/events/{which}".rstrip("/"), _model(EventPage), params)


def get_event(event_id: str) -> Call[Event]:
    return _get(f"/api/events/{_segment(event_id)}", _model(Event))


def create_event(
    event_type: EventType | str,
    event_id: str | None,
    task_id: str | None,
    agent_id: str | None,
    payload: Mapping[str, Any] | None,
) -> Call[Event]:
    body = _body(id=event_id, type=event_type, task_id=task_id, agent_id=agent_id, payload=payload)
    # With its id given, an event is stored once however often it is sent: safe to retry.
    return Call("POST", "/api/events", _model(Event), json=body, idempotent=event_id is not None)


def mark_event_processed(event_id: str) -> Call[Event]:
    return Call("POST", f"/api/events/{_segment(event_id)}/processed", _model(Event), idempotent=True)


# github


def github_status() -> Call[TokenStatus]:
    return _get("/api/github/status", _model(TokenStatus))


def github_repo(repo: str) -> Call[RepoInfo]:
    return _get(f"/api/github/repo/{_repo(repo)}", _model(RepoInfo))


def github_default_branch(repo: str) -> Call[DefaultBranch]:
    return _get(f"/api/github/repo/{_repo(repo)}/default-branch", _model(DefaultBranch))


def github_clone_url(repo: str, authenticated: bool) -> Call[CloneUrl]:
    params: Params = {"authenticated": "true"} if authenticated else {}
    return _get(f"/api/github/clone-url/{_repo(repo)}", _model(CloneUrl), params)


def github_push(repo: str, path: str, branch: str) -> Call[PushResult]:
    body = {"repo": repo, "path": path, "branch": branch}
    return Call("POST", "/api/github/push", _model(PushResult), json=body)


def github_create_pull(
    repo: str, head: str, title: str, body: str | None, base: str | None, draft: bool
) -> Call[CreatedPullRequest]:
    # The server answers an open pull request for the same head instead of a second one: safe to retry.
    payload = _body(repo=repo, head=head, title=title, body=body, base=base, draft=draft)
    return Call("POST", "/api/github/pr", _model(CreatedPullRequest), json=payload, idempotent=True)


def github_pull(repo: str, number: int) -> Call[PullRequest]:
    return _get(f"/api/github/pr/{_repo(repo)}/{number}", _model(PullRequest))


def github_pulls(repo: str, state: PullState, head: str | None, base: str | None) -> Call[list[PullRequest]]:
    params = _params(state=state, head=head, base=base)
    return _get(f"/api/github/prs/{_repo(repo)}", _list_of(PullRequest), params)


def github_merge_pull(
    repo: str,
    number: int,
    merge_method: MergeMethod,
    commit_title: str | None,
    commit_message: str | None,
    sha: str | None,
) -> Call[MergeResult]:
    body = _body(merge_method=merge_method, commit_title=commit_title, commit_message=commit_message, sha=sha)
    return Call("POST", f"/api/github/pr/{_repo(repo)}/{number}/merge", _model(MergeResult), json=body)


def github_ensure_remote(repo: str, path: str) -> Call[RemoteResult]:
    return Call(
        "POST",
        f"/api/github/ensure-remote/{_repo(repo)}",
        _model(RemoteResult),
        json={"path": path},
        idempotent=True,
    )


# webhooks


def create_webhook(url: str, event_types: list[str], secret: str) -> Call[Webhook]:
    body = {"url": url, "event_types": event_types, "secret": secret}
    return Call("POST", "/api/webhooks", _model(Webhook), json=body)


def list_webhooks() -> Call[list[Webhook]]:
    return _get("/api/webhooks", _list_of(Webhook))


def delete_webhook(webhook_id: str) -> Call[None]:
    return Call("DELETE", f"/api/webhooks/{_segment(webhook_id)}", _nothing)


def webhook_deliveries(webhook_id: str, limit: int) -> Call[list[WebhookDelivery]]:
    return _get(
        f"/api/webhooks/{_segment(webhook_id)}/deliveries", _list_of(WebhookDelivery), {"limit": limit}
    )


# agent profiles


def list_profiles() -> Call[list[Profile]]:
    return _get("/api/profiles", _list_of(Profile))


def get_profile(name: str) -> Call[Profile]:
    return _get(f"/api/profiles/{_segment(name)}", _model(Profile))


def set_profile(name: str, agent_type: AgentType | str, settings: Mapping[str, Any]) -> Call[Profile]:
    body = {**settings, "agent_type": _value(agent_type)}
    return Call("PUT", f"/api/profiles/{_segment(name)}", _model(Profile), json=body, idempotent=True)


def delete_profile(name: str) -> Call[None]:
    return Call("DELETE", f"/api/profiles/{_segment(name)}", _nothing)


# stats


def stats(hours: int = 24, days: int = 14) -> Call[Stats]:
    return _get("/api/stats", _model(Stats), _params(hours=hours, days=days))
