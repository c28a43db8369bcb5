"""Containers that outlived the recorded end of their agent: a start whose thread went on after the service
stopped (or crashed) creates a container nothing watches. Removed when the service starts, and for
instances that died (several instances) at each recovery sweep."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.agents.supervision import Supervision
from orchestrator.domain.types import AgentStatus
from orchestrator.runtimes.base import PROMPT_FILE, Runtime, RuntimeError_
from orchestrator.runtimes.docker import LABEL_PREFIX, DockerRuntime, docker_errors
from orchestrator.store.agents import AgentStore

log = logging.getLogger(__name__)


class LeftoverContainers:
    def __init__(self, agents: AgentStore, runtime: Runtime, supervision: Supervision) -> None:
        self._agents = agents
        self._runtime = runtime
        self._supervision = supervision

    def remove(self, owner_gone: Callable[[str | None], bool]) -> int:
        """Removes the containers labelled by an instance `owner_gone` names whose agent's row has ended;
        how many. A container of an agent this store does not know (another service's, sharing the
        engine) or of one still active is left alone. Blocking."""
        runtime = self._runtime
        if not isinstance(runtime, DockerRuntime):
            return 0
        try:
            containers = runtime.labelled()
        except (RuntimeError_, *docker_errors()) as exc:  # type: ignore[misc]
            log.warning("cannot list the agents' containers: %s", exc)
            return 0
        removed = 0
        for container in containers:
            labels = container.labels or {}
            run_id = labels.get(f"{LABEL_PREFIX}agent_id", "")
            agent_id = labels.get(f"{LABEL_PREFIX}hook_of") or run_id
            if not agent_id or not owner_gone(labels.get(f"{LABEL_PREFIX}instance_id")):
                continue
            row = self._agents.get(agent_id)
            if row is None or not AgentStatus(row["status"]).is_terminal:
                continue
            if self._supervision.in_hand(agent_id):
                continue
            if not row["run_dir"]:
                continue
            run_dir = Path(row["run_dir"])
            if run_id != agent_id:  # a hook's: <agent run dir>/hooks/<name>
                run_dir = run_dir / "hooks" / run_id.rsplit(".", 1)[-1]
            prompt = run_dir / PROMPT_FILE
            if not {str(prompt), os.path.realpath(prompt)} & _mounted(container.attrs):
                continue  # the same id in another service's store (its run directory is elsewhere)
            log.warning(
                "agent %s has ended (%s) but container %s of %s still exists: removed",
                agent_id,
                row["status"],
                (container.id or "")[:12],
                run_id,
            )
            runtime.remove_leftover(container, run_dir)
            removed += 1
        return removed


def _mounted(attrs: dict[str, Any]) -> set[str]:
    return {str(mount.get("Source")) for mount in attrs.get("Mounts") or [] if isinstance(mount, dict)}
