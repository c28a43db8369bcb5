"""Stopping agents: one on request, or every run this instance supervises when the service stops."""

from __future__ import annotations

import asyncio
import logging
import time

from orchestrator.agents.errors import AgentError
from orchestrator.agents.supervision import Supervision
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.types import AgentStatus
from orchestrator.store.agents import AgentRow, AgentStore

log = logging.getLogger(__name__)

KILL_REQUEST_POLL_SECONDS = 0.25


class Stopper:
    def __init__(self, agents: AgentStore, supervision: Supervision, grace_seconds: float) -> None:
        self._agents = agents
        self._supervision = supervision
        self._grace = grace_seconds

    async def kill(self, agent_id: str) -> AgentRow:
        row = self._agents.get(agent_id)
        if row is None:
            raise AgentError(f"agent {agent_id!r} not found", 404)
        if AgentStatus(row["status"]).is_terminal:
            raise AgentError(f"agent {agent_id} has already ended ({row['status']})", 409)
        supervisor = self._supervision.supervisor(agent_id)
        if (hooks := self._supervision.before_start.get(agent_id)) is not None:
            await self._cancel(hooks)  # its workspace hooks run: they end, and the CLI never starts
        elif supervisor is None:
            # another instance supervises it: the request goes through the store to its owner
            if not self._agents.request_kill(agent_id):
                raise AgentError(f"agent {agent_id} has already ended", 409)
            await self._ended_in_store(agent_id)
        else:
            supervisor.stop("api")
            try:
                async with asyncio.timeout(self._grace + 10):
                    await supervisor.done.wait()
            except TimeoutError:
                log.warning("agent %s did not end within the kill grace", agent_id)
        found = self._agents.get(agent_id)
        assert found is not None
        return found

    async def _ended_in_store(self, agent_id: str) -> None:
        deadline = time.monotonic() + self._grace + 10 + KILL_REQUEST_POLL_SECONDS
        while time.monotonic() < deadline:
            row = await asyncio.to_thread(self._agents.get, agent_id)
            if row is None or AgentStatus(row["status"]).is_terminal:
                return
            await asyncio.sleep(0.1)
        log.warning("agent %s did not end within the kill grace after a kill request", agent_id)

    async def follow_kill_requests(self, owner: str) -> None:
        """Kills this instance's agents that another instance was asked to kill."""
        while True:
            for agent_id in await asyncio.to_thread(self._agents.kill_requests, owner):
                supervisor = self._supervision.supervisor(agent_id)
                if (hooks := self._supervision.before_start.get(agent_id)) is not None:
                    hooks.cancel()
                elif supervisor is not None:
                    log.info("agent %s: killed on a request made to another instance", agent_id)
                    supervisor.stop("api")
            await asyncio.sleep(KILL_REQUEST_POLL_SECONDS)

    async def _cancel(self, job: asyncio.Task[None]) -> None:
        job.cancel()
        await asyncio.wait([job], timeout=self._grace + 10)

    async def shutdown(self, kill_agents: bool) -> None:
        """Either ends the agents or leaves them running for the next start to adopt; then stops watching.
        Spawns still running their workspace hooks end either way (their CLI never started)."""
        if hooks := list(self._supervision.before_start.values()):
            for job in hooks:
                job.cancel()
            await asyncio.wait(hooks, timeout=self._grace + 10)
        if kill_agents:
            for supervisor in self._supervision.supervisors():
                supervisor.stop("shutdown", EndReason.SHUTDOWN)
            if tasks := self._supervision.tasks():
                await asyncio.wait(tasks, timeout=self._grace + 10)
        for task in self._supervision.tasks():
            task.cancel()
        if tasks := self._supervision.tasks():
            await asyncio.wait(tasks, timeout=5)
