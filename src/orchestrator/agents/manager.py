"""The agent manager: the one face the rest of the service uses for agents. Each job lives in its own
module: starting (spawner), watching runs to their end (supervision), taking over what a stopped instance
left (adoption), running again (retry), stopping (shutdown), telling listeners (announcer)."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.agents.adoption import Adoption
from orchestrator.agents.announcer import Announcer, EndListener, FlagListener
from orchestrator.agents.blanks import Blanks
from orchestrator.agents.errors import AgentError, AgentTakenOver
from orchestrator.agents.hooks import HookEnd, HookRunner
from orchestrator.agents.leftovers import LeftoverContainers
from orchestrator.agents.log_bus import LogBus
from orchestrator.agents.log_writer import LogWriter
from orchestrator.agents.requests import SpawnRequest
from orchestrator.agents.retry import Retry
from orchestrator.agents.shutdown import Stopper
from orchestrator.agents.spawner import Spawner
from orchestrator.agents.supervision import Supervision
from orchestrator.domain.workflow_file import HookName
from orchestrator.runtimes.base import Runtime
from orchestrator.settings import Settings
from orchestrator.store.agents import AgentRow, AgentStore

__all__ = ["AgentError", "AgentManager", "AgentTakenOver", "SpawnRequest"]


class AgentManager:
    def __init__(
        self,
        settings: Settings,
        agents: AgentStore,
        runtime: Runtime,
        writer: LogWriter,
        bus: LogBus,
        redact: Callable[[str], str],
        instance_id: str,
    ) -> None:
        self._instance_id = instance_id
        self._announcer = Announcer(agents, bus)
        self._supervision = Supervision(settings, agents, writer, self._announcer, redact, instance_id)
        bus.on_first_reader(self._supervision.look_now)
        self._spawner = Spawner(
            settings, agents, runtime, self._supervision, self._announcer, redact, instance_id
        )
        self._spawner.hooks = HookRunner(runtime, writer, redact, settings.log_line_max_bytes)
        self._adoption = Adoption(agents, runtime, self._supervision, self._announcer, instance_id)
        self._retry = Retry(agents, self._spawner.spawn, settings.agent_stall_action)
        self._stopper = Stopper(agents, self._supervision, settings.agent_kill_grace_seconds)
        self._supervision.on_stopped = self._retry.resume_stopped
        self._leftovers = LeftoverContainers(agents, runtime, self._supervision)

    @property
    def workspace_blanks(self) -> Blanks:
        """Fresh workspaces made ahead (a task's checkouts without a repository take them too)."""
        return self._spawner.workspace_blanks

    def make_blanks(self) -> None:
        self._spawner.make_blanks()

    def on_end(self, listener: EndListener) -> None:
        self._announcer.on_end(listener)

    def on_flag(self, listener: FlagListener) -> None:
        self._announcer.on_flag(listener)

    @property
    def running_count(self) -> int:
        return self._supervision.running_count

    @property
    def spawned(self) -> int:
        return self._spawner.spawned

    def claude_problem(self) -> str | None:
        return self._spawner.claude_problem()

    def supervises(self, agent_id: str) -> bool:
        return self._supervision.supervises(agent_id)

    def release(self, agent_id: str) -> None:
        """Another instance took the agent over: stop watching it, leave the run alone."""
        self._supervision.release(agent_id)

    async def spawn(self, req: SpawnRequest) -> AgentRow:
        return await self._spawner.spawn(req)

    async def run_hook(
        self, agent: AgentRow, name: HookName, command: str, seconds: float, writable: tuple[str, ...] = ()
    ) -> HookEnd:
        """A workspace hook in the sandbox of an ended agent (before_remove); its lines are the agent's."""
        return await self._spawner.run_hook(agent, name, command, seconds, writable)

    async def kill(self, agent_id: str) -> AgentRow:
        return await self._stopper.kill(agent_id)

    async def follow_kill_requests(self) -> None:
        """Kills this instance's agents when a kill was asked of another instance (several instances)."""
        await self._stopper.follow_kill_requests(self._instance_id)

    async def retry(self, agent_id: str, *, resume: bool = False) -> AgentRow:
        return await self._retry.retry(agent_id, resume=resume)

    async def take_over(
        self, dead: Callable[[str | None], bool], same_host: Callable[[str | None], bool]
    ) -> dict[str, int]:
        return await self._adoption.take_over(dead, same_host)

    def remove_leftover_containers(self, owner_gone: Callable[[str | None], bool]) -> int:
        """The containers of ended agents that instances `owner_gone` names left, removed; how many."""
        return self._leftovers.remove(owner_gone)

    async def shutdown(self, kill_agents: bool) -> None:
        """Stops taking spawns; either ends the agents or leaves them running for the next start to adopt."""
        self._spawner.accepting = False
        self._spawner.stop_making_blanks()
        await self._stopper.shutdown(kill_agents)
        self._supervision.close()
