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


def take_head(settings: Settings, publisher: Publisher, task: TaskRow, branch: str, sha: str) -> bool:
    """The task's primary checkout renewed at `sha`; False (nothing changed) when the upstream's branch no
    longer holds `sha`. Raises ForgeError, WorkspaceError or OSError."""
    repo = str(task["repo"])
    if not publisher.follow(repo, branch, sha):
        return False
    root = workspace.task_root(settings.resolved_workspaces_dir, task["id"])
    path = workspace.checkout_dir(root, repo)
    workspace.remove(path)
    workspace.prepare(path, repo, settings.resolved_projects_dir, branch, ForgeRepos.of(settings))
    publisher.onto_checkout(repo, path, branch)
    return True
