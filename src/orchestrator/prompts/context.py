"""What a prompt template is filled with, taken from a task row."""

from __future__ import annotations

import json
from typing import Any


def task_context(task: dict[str, Any]) -> dict[str, str]:
    repos = task.get("repos") or ([task["repo"]] if task.get("repo") else [])
    plan = task.get("execution_plan")
    return {
        "task_id": str(task["id"]),
        "title": str(task.get("title") or ""),
        "description": str(task.get("description") or "(no description)"),
        "repos": ", ".join(repos) if repos else "(none)",
        "plan": json.dumps(plan, indent=2) if plan else "(no plan: work from the task description)",
    }
