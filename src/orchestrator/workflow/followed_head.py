"""Someone else pushed to a task's PR branch: the new head comes into the service's mirror (fetched with
the mirror's hardened git), and the task's checkout is made again from there, so that the next agent (the
reviewer, who must review what would merge) works on it. The old checkout holds nothing that is not on
GitHub: the task waited on GitHub, so its last agent's branch had been pushed. No git runs in a checkout
an agent has used: the new one is made by the service, and only then does an agent enter it."""

from __future__ import annotations

from orchestrator.agents import workspace
from orchestrator.forge.publisher import Publisher
from orchestrator.forge.sources import ForgeRepos
from orchestrator.settings import Settings
from orchestrator.store.tasks import TaskRow


def take_head(settings: Settings, publisher: Publisher, task: TaskRow, branch: str) -> str | None:
    """The branch as it is upstream now taken into the mirror and the task's primary checkout made again
    at its tip; the tip, or None (nothing changed) while the upstream still shows the commit the task
    waits on (GitHub's API told of the push before its git did). Raises ForgeError, WorkspaceError or
    OSError."""
    repo = str(task["repo"])
    tip = publisher.follow(repo, branch)
    if tip == task["head_sha"]:
        return None
    root = workspace.task_root(settings.resolved_workspaces_dir, task["id"])
    repos = task["repos"] or [repo]
    path = workspace.checkout_dir(root, repos[0], repos)  # the primary checkout, where the PR's branch is
    workspace.remove(path)
    # made without the branch: its content (someone else's) is checked out only by the mirror's hardened
    # git below, never with the operator's git configuration that a project's clone uses
    workspace.prepare(path, repo, settings.resolved_projects_dir, None, ForgeRepos.of(settings))
    publisher.onto_checkout(repo, path, branch)
    return tip
