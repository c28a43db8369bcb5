"""What a retry spawns, decided from the ended agent's row alone."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.agents.errors import AgentError
from orchestrator.agents.retry import retry_request
from orchestrator.domain.types import AgentType
from orchestrator.domain.watchdog import Budget

SESSION = "0f3c2a4e-8b1d-4c6f-9a2e-5d7b1c3e9f01"


def _row(**changes: Any) -> dict[str, Any]:
    return {
        "id": "coding-0000000a",
        "status": "failed",
        "error": "API error 500: overloaded",
        "agent_type": "coding",
        "prompt": "fix the bug",
        "session_id": SESSION,
        "metadata": {},
        "config_dir": "/runs/coding-0000000a/claude-config",
        "budget": {"usd": 1.0, "turns": None, "wall_seconds": None},
        "task_id": "task-1",
        "repo": "calc",
        "model": "m",
        "timeout_seconds": 60.0,
        "max_turns": 5,
        "workspace": "/ws/coding-0000000a",
        **changes,
    }


def test_a_fresh_retry_runs_the_same_prompt_in_the_same_place() -> None:
    req = retry_request(_row(), resume=False)
    assert (req.agent_type, req.prompt, req.retry_of) == (AgentType.CODING, "fix the bug", "coding-0000000a")
    assert (req.workspace, req.task_id, req.budget) == ("/ws/coding-0000000a", "task-1", Budget(usd=1.0))
    assert req.resume_session is None and req.config_dir is None


def test_a_resume_continues_the_session_and_says_where_it_stopped() -> None:
    req = retry_request(_row(), resume=True)
    assert req.resume_session == SESSION
    assert req.config_dir == "/runs/coding-0000000a/claude-config"
    assert "ended failed: API error 500: overloaded" in req.prompt
    assert req.prompt.endswith("fix the bug")


def test_a_running_agent_or_one_without_a_session_is_refused() -> None:
    with pytest.raises(AgentError, match="kill it before retrying") as running:
        retry_request(_row(status="running"), resume=False)
    assert running.value.status == 409
    with pytest.raises(AgentError, match="no Claude session"):
        retry_request(_row(session_id=None), resume=True)
    assert retry_request(_row(session_id=None, metadata={"session_id": SESSION}), resume=True).resume_session
