"""The asyncio client, on `httpx.AsyncClient`: the same methods as `Client`, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from orchestrator.client import endpoints as api
from orchestrator.client.base import (
    DEFAULT_TIMEOUT,
    STREAM_RECONNECT,
    finish,
    headers,
    resolve_token,
    resolve_url,
    retry_policy,
    stream_timeout,
)
from orchestrator.client.endpoints import Call
from orchestrator.client.errors import connection_failed, error_from_response
from orchestrator.client.retry import RetryPolicy, retryable
from orchestrator.client.stream import LogEvent, LogFollower
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
    LogLine,
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


class AsyncClient:
    """The orchestrator's HTTP API for asyncio code; see `Client` for the behaviour.

    `base_url` defaults to $ORCHESTRATOR_URL, else http://127.0.0.1:3020; `token` to
    $ORCHESTRATOR_API_TOKEN, else (for a loopback URL) the token a local service generated in its data
    directory; `token=""` sends none. Calls that are safe to repeat (reads, setting a queue setting, an event
    sent with its id) are retried `retries` times on connection errors; nothing that could start an
    agent or create something twice is. Errors raise `OrchestratorError` subclasses carrying the
    server's `detail`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        retries: int | RetryPolicy = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = resolve_url(base_url)
        self.timeout = timeout
        self._retry = retry_policy(retries)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers(resolve_token(token, self.base_url)),
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params, json=call.json
                )
            except httpx.TransportError as exc:
                attempt += 1
                wait = self._retry.delay(attempt) if retryable(exc, call.idempotent) else None
                if wait is None:
                    raise connection_failed(exc, self.base_url) from exc
                await asyncio.sleep(wait)
                continue
            return finish(call, response)

    # health

    async def health(self) -> Health:
        return await self._send(api.health())

    # agents

    async def list_agents(
        self,
        *,
        status: AgentStatus | str | None = None,
        agent_type: AgentType | str | None = None,
        task_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> AgentPage:
        return await self._send(api.list_agents(status, agent_type, task_id, limit, offset))

    async def active_agents(self) -> ActiveAgents:
        return await self._send(api.active_agents())

    async def analytics(self) -> Analytics:
        return await self._send(api.analytics())

    async def get_agent(self, agent_id: str) -> AgentDetail:
        return await self._send(api.get_agent(agent_id))

    async def agent_logs(self, agent_id: str, *, after: int = 0, limit: int = 1000) -> LogPage:
        """One page of stored lines with ids above `after`."""
        return await self._send(api.agent_logs(agent_id, after, limit))

    async def iter_logs(self, agent_id: str, *, after: int = 0) -> AsyncIterator[LogLine]:
        """Every stored line after `after`, page by page (no waiting for new ones: see `stream_logs`)."""
        while True:
            page = await self.agent_logs(agent_id, after=after, limit=5000)
            for item in page.items:
                yield item
            if not page.has_more:
                return
            after = page.next_after

    async def stream_logs(
        self, agent_id: str, after: int = 0, *, reconnect: RetryPolicy = STREAM_RECONNECT
    ) -> AsyncIterator[LogEvent]:
        """The agent's lines after `after` as they are written, then one `LogEnd` when it has ended.

        A dropped connection is resumed from the last line delivered (`Last-Event-ID`), so no line is
        lost or doubled; `reconnect` bounds the attempts in a row without progress.
        """
        follower = LogFollower(agent_id, after, reconnect, self.base_url)
        path = api.logs_path(agent_id)
        while True:
            params, extra = follower.connect()
            try:
                async with self._http.stream(
                    "GET", path, params=params, headers=extra, timeout=stream_timeout(self.timeout)
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        wait = follower.refused(error_from_response(response))
                    else:
                        follower.check(response.headers.get("content-type", ""))
                        async for line in response.aiter_lines():
                            item = follower.feed(line)
                            if item is not None:
                                yield item
                                if not isinstance(item, LogLine):
                                    return
                        wait = follower.dropped("the stream ended before the agent did")
            except httpx.TransportError as exc:
                wait = follower.dropped(connection_failed(exc, self.base_url).detail)
            await asyncio.sleep(wait)

    async def spawn_agent(
        self,
        agent_type: AgentType | str,
        prompt: str | None = None,
        *,
        task_id: str | None = None,
        repo: str | None = None,
        model: str | None = None,
        timeout_seconds: float | None = None,
        max_turns: int | None = None,
        budget: Mapping[str, float] | None = None,
        profile: str | None = None,
    ) -> AgentDetail:
        """Start an agent: a `prompt`, or a `task_id` whose prompt the server renders. `budget` may
        hold `usd`, `turns` and `wall_seconds`; `profile` names an agent profile over `agent_type`
        (what the call itself gives wins)."""
        return await self._send(
            api.spawn(agent_type, prompt, task_id, repo, model, timeout_seconds, max_turns, budget, profile)
        )

    async def kill_agent(self, agent_id: str) -> AgentDetail:
        return await self._send(api.kill(agent_id))

    async def retry_agent(self, agent_id: str, *, resume: bool = False) -> AgentDetail:
        """A new agent with the same type, task, prompt and workspace as an ended one; with `resume`,
        it continues the ended one's CLI session."""
        return await self._send(api.retry(agent_id, resume))

    # tasks

    async def create_task(
        self,
        title: str,
        *,
        task_id: str | None = None,
        description: str | None = None,
        repo: str | None = None,
        repos: list[str] | None = None,
        priority: int | None = None,
    ) -> Task:
        return await self._send(api.create_task(title, task_id, description, repo, repos, priority))

    async def list_tasks(
        self, *, status: TaskStatus | str | None = None, limit: int = 50, offset: int = 0
    ) -> TaskPage:
        return await self._send(api.list_tasks(status, limit, offset))

    async def get_task(self, task_id: str) -> TaskDetail:
        return await self._send(api.get_task(task_id))

    async def update_task(self, task_id: str, changes: TaskUpdate | Mapping[str, Any]) -> Task:
        return await self._send(api.update_task(task_id, changes))

    async def delete_task(self, task_id: str) -> None:
        await self._send(api.delete_task(task_id))

    async def task_timeline(self, task_id: str) -> TaskTimeline:
        """The task's agents as spans on a time axis, its waits, and what it cost so far."""
        return await self._send(api.task_timeline(task_id))

    async def task_diff(self, task_id: str, page: int = 1) -> DiffPage:
        """A page of files of the diff of the task's branch against its base (NotFound while it has none)."""
        return await self._send(api.task_diff(task_id, page))

    async def approve_task(self, task_id: str) -> Task:
        """Past the approval gate the task waits at; Conflict when it waits at none."""
        return await self._send(api.approve_task(task_id))

    async def reject_task(self, task_id: str, reason: str) -> Task:
        """The task ends failed at its approval gate, with `reason`."""
        return await self._send(api.reject_task(task_id, reason))

    # queue

    async def queue_status(self) -> QueueStatus:
        return await self._send(api.queue_status())

    async def queue_settings(self) -> QueueSettingsModel:
        return await self._send(api.queue_settings())

    async def set_queue_setting(self, key: str, value: bool | int | str) -> QueueSettingsModel:
        return await self._send(api.set_queue_setting(key, value))

    async def pause_queue(self) -> QueueSettingsModel:
        return await self.set_queue_setting("paused", True)

    async def resume_queue(self) -> QueueSettingsModel:
        return await self.set_queue_setting("paused", False)

    async def queue_add(self, task_id: str) -> QueueItem:
        return await self._send(api.queue_add(task_id))

    async def queue_remove(self, task_id: str) -> QueueStatus:
        return await self._send(api.queue_remove(task_id))

    async def queue_clear(self) -> Cleared:
        """Removes the completed and failed entries."""
        return await self._send(api.queue_clear())

    # events

    async def list_events(
        self,
        *,
        event_type: EventType | str | None = None,
        task_id: str | None = None,
        status: EventStatus | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> EventPage:
        return await self._send(api.list_events(event_type, task_id, status, limit, offset))

    async def pending_events(
        self, *, task_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> EventPage:
        """Events not handled yet (pending or being handled)."""
        return await self._send(api.list_events(None, task_id, None, limit, offset, which="pending"))

    async def processed_events(
        self, *, task_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> EventPage:
        """Events handled (processed or failed)."""
        return await self._send(api.list_events(None, task_id, None, limit, offset, which="processed"))

    async def get_event(self, event_id: str) -> Event:
        return await self._send(api.get_event(event_id))

    async def create_event(
        self,
        event_type: EventType | str,
        *,
        event_id: str | None = None,
        task_id: str | None = None,
        agent_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> Event:
        """Record an event; with `event_id`, sending it again answers the stored one."""
        return await self._send(api.create_event(event_type, event_id, task_id, agent_id, payload))

    async def mark_event_processed(self, event_id: str) -> Event:
        return await self._send(api.mark_event_processed(event_id))

    # github

    async def github_status(self) -> TokenStatus:
        """Whether the service has a GitHub token, and what GitHub says about it."""
        return await self._send(api.github_status())

    async def github_repo(self, repo: str) -> RepoInfo:
        return await self._send(api.github_repo(repo))

    async def github_default_branch(self, repo: str) -> DefaultBranch:
        return await self._send(api.github_default_branch(repo))

    async def github_clone_url(self, repo: str, *, authenticated: bool = False) -> CloneUrl:
        return await self._send(api.github_clone_url(repo, authenticated))

    async def github_push(self, repo: str, path: str, branch: str) -> PushResult:
        """Push `branch` of the workspace at `path` (under the service's workspaces) to `repo`."""
        return await self._send(api.github_push(repo, path, branch))

    async def github_create_pull(
        self,
        repo: str,
        head: str,
        title: str,
        *,
        body: str | None = None,
        base: str | None = None,
        draft: bool = False,
    ) -> CreatedPullRequest:
        """Open a pull request; an open one for the same head is answered instead (`created` False)."""
        return await self._send(api.github_create_pull(repo, head, title, body, base, draft))

    async def github_pull(self, repo: str, number: int) -> PullRequest:
        return await self._send(api.github_pull(repo, number))

    async def github_pulls(
        self, repo: str, *, state: PullState = "open", head: str | None = None, base: str | None = None
    ) -> list[PullRequest]:
        return await self._send(api.github_pulls(repo, state, head, base))

    async def github_merge_pull(
        self,
        repo: str,
        number: int,
        *,
        merge_method: MergeMethod = "merge",
        commit_title: str | None = None,
        commit_message: str | None = None,
        sha: str | None = None,
    ) -> MergeResult:
        return await self._send(
            api.github_merge_pull(repo, number, merge_method, commit_title, commit_message, sha)
        )

    async def github_ensure_remote(self, repo: str, path: str) -> RemoteResult:
        """Point the `origin` remote of the workspace at `path` to `repo`."""
        return await self._send(api.github_ensure_remote(repo, path))

    # webhooks

    async def create_webhook(self, url: str, event_types: list[str], secret: str) -> Webhook:
        """Signed deliveries of `event_types` to `url` (HMAC-SHA256 of the body with `secret`)."""
        return await self._send(api.create_webhook(url, event_types, secret))

    async def list_webhooks(self) -> list[Webhook]:
        return await self._send(api.list_webhooks())

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._send(api.delete_webhook(webhook_id))

    async def webhook_deliveries(self, webhook_id: str, *, limit: int = 100) -> list[WebhookDelivery]:
        return await self._send(api.webhook_deliveries(webhook_id, limit))

    # agent profiles

    async def list_profiles(self) -> list[Profile]:
        return await self._send(api.list_profiles())

    async def get_profile(self, name: str) -> Profile:
        return await self._send(api.get_profile(name))

    async def set_profile(self, name: str, agent_type: AgentType | str, **settings: Any) -> Profile:
        """Create or replace profile `name` over `agent_type`: `settings` are the keys of
        `[agents.<type>]` in a workflow file (prompt, model, max_turns, budget_usd, allowed_tools,
        disallowed_tools, permission_mode, mcp_servers)."""
        return await self._send(api.set_profile(name, agent_type, settings))

    async def delete_profile(self, name: str) -> None:
        await self._send(api.delete_profile(name))

    async def stats(self, *, hours: int = 24, days: int = 14) -> Stats:
        """Spend per hour and day, agents running and queue depth per hour, success per agent type."""
        return await self._send(api.stats(hours, days))
