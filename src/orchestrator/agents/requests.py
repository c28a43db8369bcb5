"""What a caller asks for when it wants an agent started."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.domain.agent_tools import AgentTools
from orchestrator.domain.types import AgentType
from orchestrator.domain.watchdog import Budget
from orchestrator.domain.workflow_file import Hooks


@dataclass(frozen=True)
class SpawnRequest:
    agent_type: AgentType
    prompt: str
    task_id: str | None = None
    repo: str | None = None
    model: str | None = None
    timeout_seconds: float | None = None
    max_turns: int | None = None
    retry_of: str | None = None
    workspace: str | None = None
    agent_id: str | None = None
    add_dirs: tuple[str, ...] = ()
    budget: Budget | None = None
    resume_session: str | None = None
    config_dir: str | None = None
    queue_item: int | None = None  # the claimed queue item it starts: refused once that claim is lost
    tools: AgentTools | None = None  # tools, permission mode, MCP servers; None: every tool, no server
    hooks: Hooks | None = None  # the repository's workspace hooks (agents/hooks.py)
    workspace_created: bool = False  # its workspace was just made: after_create runs first
