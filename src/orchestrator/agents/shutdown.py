"""Stopping agents: one on request, or every run this instance supervises when the service stops."""

from __future__ import annotations

import asyncio
import logging

from orchestrator.agents.errors import AgentError
from orchestrator.agents.supervision import Supervision
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.types import AgentStatus
from orchestrator.store.agents import AgentRow, AgentStore

log = logging.getLogger(__name__)


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
        if supervisor is None:
            raise AgentError(f"agent {agent_id} is not supervised by this instance", 409)
        supervisor.stop("api")
        try:
            await asyncio.wait_for(supervisor.done.wait(), self._grace + 10)
        except TimeoutError:
            log.warning("agent %s did not end within the kill grace", agent_id)
        found = self._agents.get(agent_id)
        assert found is not None
        return found

    async def shutdown(self, kill_agents: bool) -> None:
        """Either ends the agents or leaves them running for the next start to adopt; then stops watching."""
        if kill_agents:
            for supervisor in self._supervision.supervisors():
                supervisor.stop("shutdown", EndReason.SHUTDOWN)
            if tasks := self._supervision.tasks():
                await asyncio.wait(tasks, timeout=self._grace + 10)
        for task in self._supervision.tasks():
            task.cancel()
        if tasks := self._supervision.tasks():
            await asyncio.wait(tasks, timeout=5)
