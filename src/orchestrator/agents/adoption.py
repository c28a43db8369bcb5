"""Taking over the agents that a stopped instance (or this one's earlier life) left active: supervised on
where their run can still be reached, ended with the reason where it cannot."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.agents.announcer import Announcer
from orchestrator.agents.supervision import Supervision
from orchestrator.clock import parse_iso, utc_now
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.types import AgentStatus, LogStream
from orchestrator.runtimes.base import Runtime
from orchestrator.store.agents import AgentStore

log = logging.getLogger(__name__)

NEVER_STARTED = "never started: its service stopped before the agent's process was started"
_LOST_AFTER_RESTART = "lost: its output could not be reached after a restart of the service"


def _started_ref(run_dir: str | None) -> str | None:
    """A host run records its pid before the database hears of it: enough to adopt a run caught mid-start."""
    if not run_dir:
        return None
    try:
        return f"host-pid-{int((Path(run_dir) / 'pid').read_text().strip())}"
    except (OSError, ValueError):
        return None


class Adoption:
    def __init__(
        self,
        agents: AgentStore,
        runtime: Runtime,
        supervision: Supervision,
        announcer: Announcer,
        instance_id: str,
    ) -> None:
        self._agents = agents
        self._runtime = runtime
        self._supervision = supervision
        self._announcer = announcer
        self._instance_id = instance_id

    async def take_over(
        self, dead: Callable[[str | None], bool], same_host: Callable[[str | None], bool]
    ) -> dict[str, int]:
        """Adopts the active agents of dead instances (or of this one's earlier life): supervised on
        if reachable, failed with the reason if not. Each is claimed atomically: one adopter only."""
        counts = {"adopted": 0, "lost": 0}
        for row in self._agents.active():
            agent_id, owner = row["id"], row["instance_id"]
            if self._supervision.in_hand(agent_id) or (owner != self._instance_id and not dead(owner)):
                continue
            if owner != self._instance_id and not self._agents.take(agent_id, owner, self._instance_id):
                continue
            row = self._agents.get(agent_id) or row
            # no reference stored yet (a crash between the start and its record): the runtime looks the
            # run up by the agent's label, or by the pid file a host run writes first
            ref = row["container_id"] or _started_ref(row["run_dir"]) or ""
            handle = None
            reachable = self._runtime.name != "host" or same_host(owner)
            if row["run_dir"] and reachable:
                handle = await self._runtime.adopt(agent_id, ref, Path(row["run_dir"]))
            if handle is None:
                end_reason, reason = EndReason.LOST, _LOST_AFTER_RESTART
                if row["status"] == AgentStatus.STARTING.value:
                    end_reason, reason = EndReason.NEVER_STARTED, NEVER_STARTED
                elif not reachable:
                    reason = (
                        f"lost: its instance {owner} died and its host process cannot be reached from here"
                    )
                self._agents.move(
                    agent_id,
                    end_reason.status,
                    end_reason=end_reason.value,
                    error=reason,
                    completed_at=utc_now(),
                )
                self._announcer.ended(agent_id)
                counts["lost"] += 1
                continue
            if row["status"] == AgentStatus.STARTING.value:
                self._agents.move(
                    agent_id,
                    AgentStatus.RUNNING,
                    started_at=utc_now(),
                    container_id=handle.ref,
                    pid=handle.pid,
                )
            started = parse_iso(row["started_at"]).timestamp() if row["started_at"] else time.time()
            self._supervision.watch(
                agent_id,
                handle,
                Path(row["run_dir"]),
                {LogStream.STDOUT: int(row["stdout_offset"]), LogStream.STDERR: int(row["stderr_offset"])},
                started + row["timeout_seconds"],
                row["timeout_seconds"],
                replay_upto=int(row["stdout_offset"]),
                budget=row.get("budget"),
            )
            counts["adopted"] += 1
            log.info(
                "adopted agent %s (%s) from offset %s", agent_id, row["container_id"], row["stdout_offset"]
            )
        return counts
