"""Agents as the API asks for them: a spawn's prompt (given, or rendered from its task), the spawn rate,
and the agent a kill or a retry names. Spawning itself is the manager's."""

from __future__ import annotations

import math
import time

from orchestrator.agents.manager import AgentManager, SpawnRequest
from orchestrator.agents.profiles import settings_of
from orchestrator.domain.rate import SpawnRate
from orchestrator.domain.watchdog import Budget
from orchestrator.domain.workflow_file import AgentSettings, fill
from orchestrator.errors import Invalid, NotFound, Throttled
from orchestrator.models import SpawnBody
from orchestrator.prompts.context import task_context
from orchestrator.prompts.render import render
from orchestrator.store.agents import AgentRow, AgentStore
from orchestrator.store.profiles import ProfileStore
from orchestrator.store.tasks import TaskStore


class AgentRequests:
    def __init__(
        self,
        agents: AgentStore,
        tasks: TaskStore,
        manager: AgentManager,
        rate: SpawnRate,
        profiles: ProfileStore | None = None,
    ) -> None:
        self._agents = agents
        self._tasks = tasks
        self._manager = manager
        self._rate = rate
        self._profiles = profiles

    def get(self, agent_id: str) -> AgentRow:
        row = self._agents.get(agent_id)
        if row is None:
            raise NotFound(f"agent {agent_id!r} not found")
        return row

    async def spawn(self, body: SpawnBody) -> AgentRow:
        shaped = self._profile(body)
        prompt = body.prompt
        if prompt is None:
            if body.task_id is None:
                raise Invalid("required when no task_id is given", field="prompt")
            task = self._tasks.get(body.task_id)
            if task is None:
                raise NotFound(f"task_id: task {body.task_id!r} not found")
            context = task_context(task)
            prompt = fill(shaped.prompt, context) if shaped.prompt else render(body.agent_type, context)
        self._within_rate()
        budget = Budget(**body.budget.model_dump()) if body.budget else None
        if budget is None and shaped.budget_usd is not None:
            budget = Budget(usd=shaped.budget_usd)
        return await self._manager.spawn(
            SpawnRequest(
                agent_type=body.agent_type,
                prompt=prompt,
                task_id=body.task_id,
                repo=body.repo,
                model=body.model or shaped.model,
                timeout_seconds=body.timeout_seconds,
                max_turns=body.max_turns or shaped.max_turns,
                budget=budget,
                tools=shaped.tools() if body.profile else None,
            )
        )

    def _profile(self, body: SpawnBody) -> AgentSettings:
        """The named profile's settings (what the body gives itself wins), or none."""
        if body.profile is None:
            return AgentSettings()
        if self._profiles is None:
            raise Invalid("profiles are not available here", field="profile")
        try:
            return settings_of(self._profiles, body.profile, body.agent_type)
        except LookupError as exc:
            raise Invalid(str(exc), field="profile") from None

    async def retry(self, agent_id: str, *, resume: bool) -> AgentRow:
        self.get(agent_id)
        self._within_rate()
        return await self._manager.retry(agent_id, resume=resume)

    async def kill(self, agent_id: str) -> AgentRow:
        return await self._manager.kill(agent_id)

    def _within_rate(self) -> None:
        wait = self._rate.take(time.monotonic())
        if wait is not None:
            raise Throttled(
                f"spawn rate: more than {self._rate.per_minute} agents a minute "
                f"(SPAWN_RATE_PER_MINUTE); retry in {math.ceil(wait)} s",
                retry_after=wait,
            )
