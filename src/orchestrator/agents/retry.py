"""Running an ended agent again: afresh with its prompt, or resuming its Claude session with a prompt that
says where the earlier run stopped; and resuming a run the watchdog stopped, when the settings say so."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from orchestrator.agents.errors import AgentError
from orchestrator.agents.requests import SpawnRequest
from orchestrator.domain.agent_tools import AgentTools
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.types import AgentStatus, AgentType
from orchestrator.domain.watchdog import Budget, StallAction
from orchestrator.store.agents import AgentRow, AgentStore

log = logging.getLogger(__name__)


def resume_prompt(row: AgentRow) -> str:
    return (
        f"Continue the work from where you stopped (the earlier run ended {row['status']}: "
        f"{row['error'] or 'no reason given'}). The original request was:\n\n{row['prompt']}"
    )


def retry_request(row: AgentRow, *, resume: bool) -> SpawnRequest:
    """What to spawn to run `row`'s agent again; refused while it runs, or to resume without a session."""
    agent_id = row["id"]
    if not AgentStatus(row["status"]).is_terminal:
        raise AgentError(f"agent {agent_id} is still {row['status']}: kill it before retrying", 409)
    session = row["session_id"] or (row["metadata"] or {}).get("session_id")
    if resume and not session:
        raise AgentError(f"agent {agent_id} has no Claude session to resume: retry without resume", 409)
    return SpawnRequest(
        agent_type=AgentType(row["agent_type"]),
        resume_session=session if resume else None,
        config_dir=row["config_dir"] if resume else None,
        budget=Budget(**row["budget"]) if row.get("budget") else None,
        prompt=resume_prompt(row) if resume else row["prompt"],
        task_id=row["task_id"],
        repo=row["repo"],
        model=row["model"],
        timeout_seconds=row["timeout_seconds"],
        max_turns=row["max_turns"],
        retry_of=agent_id,
        workspace=row["workspace"],
        tools=AgentTools.model_validate(tools) if (tools := (row["metadata"] or {}).get("tools")) else None,
    )


class Retry:
    def __init__(
        self,
        agents: AgentStore,
        spawn: Callable[[SpawnRequest], Awaitable[AgentRow]],
        stall_action: StallAction,
    ) -> None:
        self._agents = agents
        self._spawn = spawn
        self._stall_action = stall_action

    async def retry(self, agent_id: str, *, resume: bool = False) -> AgentRow:
        row = self._agents.get(agent_id)
        if row is None:
            raise AgentError(f"agent {agent_id!r} not found", 404)
        return await self._spawn(retry_request(row, resume=resume))

    async def resume_stopped(self, agent_id: str, stopped_for: EndReason) -> None:
        """A run the watchdog ended as stalled or looping goes on in its session, if the settings say so."""
        if self._stall_action != "kill_resume":
            return
        try:
            resumed = await self.retry(agent_id, resume=True)
            log.info("agent %s resumed as %s after being %s", agent_id, resumed["id"], stopped_for)
        except AgentError as exc:
            log.warning("agent %s could not be resumed: %s", agent_id, exc)
