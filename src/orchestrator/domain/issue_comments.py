"""What the service writes on an issue it took as a task."""

from __future__ import annotations

import hashlib
import re

REASON_CAP = 500
_TASK_PREFIX = re.compile(r"[^a-z0-9]+")


def issue_task_id(repo: str, number: int) -> str:
    """The one task id of an issue: the same whichever way (poll or webhook) the issue arrives."""
    owner, _, name = repo.lower().partition("/")
    return f"gh-{_TASK_PREFIX.sub('-', owner)[:40]}.{_TASK_PREFIX.sub('-', name)[:60]}-{number}"


def distinct_issue_task_id(repo: str, number: int) -> str:
    """The task id of an issue whose `issue_task_id` another repository's task holds (`my.repo` and
    `my-repo` read alike there, and names are cut): the repository's exact name hashed in."""
    digest = hashlib.sha256(repo.lower().encode()).hexdigest()[:10]
    return issue_task_id(repo, number).removesuffix(f"-{number}") + f"-{digest}-{number}"


def task_description(repo: str, number: int, body: str) -> str:
    header = f"From GitHub issue {repo}#{number}."
    return f"{header}\n\n{body}" if body.strip() else header


def pr_opened(task_id: str, pr_url: str) -> str:
    return f"Task `{task_id}` opened a pull request for this issue: {pr_url}"


def task_ended(task_id: str, status: str, pr_url: str | None, error: str | None, cost_usd: float) -> str:
    lines = [f"Task `{task_id}` {status}."]
    if error:
        reason = error if len(error) <= REASON_CAP else error[:REASON_CAP] + "..."
        # the reason may quote an agent: no code span to break out of, no @mention to ping anyone with
        lines.append("Reason: " + reason.replace("`", "'").replace("@", "@\u200b"))
    if pr_url:
        lines.append(f"Pull request: {pr_url}")
    lines.append(f"Cost: ${cost_usd:.2f}")
    return "\n\n".join(lines)
