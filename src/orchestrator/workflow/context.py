"""What the prompt of each step is filled with: the task, its plan, branch, PR, review comments."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.domain.pr_loop import quoted
from orchestrator.prompts.context import task_context

# Reads a file of the task's repository (from the service's mirror, or without following links from the
# checkout), capped; None when it is not a regular file there.
FileReader = Callable[[str], str | None]


def _instructions(read: FileReader, names: tuple[str, ...]) -> str:
    for name in names:
        text = read(name)
        if text is not None:
            return text.replace("\x00", "")
    return "(the repository gives none: look for a README, Makefile or scripts)"


def step_context(
    task: dict[str, Any], payload: dict[str, Any], checkout: Path, branch: str, read: FileReader
) -> dict[str, str]:
    context = task_context(task)
    comments = payload.get("comments") or []
    context.update(
        branch=branch,
        pr=(
            f"#{task['pr_number']} {task.get('pr_url') or ''}".strip()
            if task.get("pr_number")
            else "(none yet)"
        ),
        review_comments="\n".join(f"- {c}" for c in comments) if comments else "(none)",
        reports=quoted([str(r) for r in payload["reports"]]) if payload.get("reports") else "(none)",
        previous_failure=str(payload.get("previous_failure") or "(none)"),
        evidence=json.dumps(payload.get("evidence") or [], indent=2),
        deploy_instructions=_instructions(read, ("DEPLOY.md", "docs/DEPLOY.md")),
        verify_instructions=_instructions(read, ("VERIFY.md", "docs/VERIFY.md")),
        workspace=str(checkout),
    )
    return context
