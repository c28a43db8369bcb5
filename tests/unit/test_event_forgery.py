"""Facts the PR watcher reads on GitHub cannot be posted (POST /api/events or EVENT_DIR): a posted
pr.ready would merge a task's PR past its checks, its reviewer and the merge approval gate."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.models import EventCreate


@pytest.mark.parametrize(
    "kind",
    ["pr.ready", "pr.closed", "pr.checks.passed", "pr.checks.failed", "pr.conflict", "pr.wait.timed_out"],
)
def test_pr_watcher_facts_are_refused(kind: str) -> None:
    with pytest.raises(ValidationError, match="written by the service only"):
        EventCreate.model_validate({"type": kind, "task_id": "t1", "payload": {"merged": True}})


def test_the_workflow_own_events_can_still_be_posted() -> None:
    assert EventCreate.model_validate({"type": "pr.created", "task_id": "t1"}).type.value == "pr.created"
