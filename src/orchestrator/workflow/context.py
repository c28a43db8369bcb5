"""What the prompt of each step is filled with: the task, its plan, branch, PR, review comments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.prompts.context import task_context


def _instructions(checkout: Path, names: tuple[str, ...]) -> str:
    for name in names:
        candidate = checkout / name
        if candidate.is_file():
            return candidate.read_text(errors="replace")[:20_000]
    return "(the repository gives none: look for a README, Makefile or scripts)"


def step_context(
    task: dict[str, Any], payload: dict[str, Any], checkout: Path, branch: str
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
        previous_failure=str(payload.get("previous_failure") or "(none)"),
        evidence=json.dumps(payload.get("evidence") or [], indent=2),
        deploy_instructions=_instructions(checkout, ("DEPLOY.md", "docs/DEPLOY.md")),
        verify_instructions=_instructions(checkout, ("VERIFY.md", "docs/VERIFY.md")),
        workspace=str(checkout),
    )
    return context
