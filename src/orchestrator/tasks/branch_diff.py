"""The diff of a task's branch against its base, page by page, for the dashboard's task page.

The branch is the one the workflow took into the service's mirror (never an agent's workspace). Its base
is where the workflow takes a repository from: for a repository under PROJECTS_DIR, that project's HEAD
(read as the workflow file reader reads it; the project's objects are lent to the mirror's git for this
read only), else the upstream's default branch as the mirror last fetched it. The diff is `base...branch`:
what the branch changed since the two parted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from orchestrator.agents.workspace import project_of
from orchestrator.domain import diff_pages as dp
from orchestrator.errors import Invalid, NotFound, Unavailable
from orchestrator.forge import branch_diff
from orchestrator.forge.errors import ForgeInputError, GitError
from orchestrator.forge.git import git_env, rev_parse, run_git
from orchestrator.forge.mirror import UPSTREAM
from orchestrator.forge.names import check_branch
from orchestrator.forge.publisher import Publisher
from orchestrator.settings import Settings
from orchestrator.store.tasks import TaskStore


def _shown(path: str) -> str:
    """A path as text (a name that is not UTF-8 shows with replacement characters)."""
    return path.encode(errors="surrogateescape").decode(errors="replace")


class TaskDiffs:
    def __init__(self, settings: Settings, tasks: TaskStore, publisher: Publisher) -> None:
        self._settings = settings
        self._tasks = tasks
        self._publisher = publisher

    def page(self, task_id: str, page: int) -> dict[str, Any]:
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} not found")
        repo, branch = task["repo"], task["branch"]
        if not repo or not branch:
            raise NotFound(f"task {task_id} has no branch yet")
        try:
            check_branch(branch)
            mirror = self._publisher.mirrors.path(self._publisher.ref(repo))
        except ForgeInputError:
            raise NotFound(f"task {task_id} has no branch the service can read") from None
        head = rev_parse(mirror, f"refs/heads/{branch}") if (mirror / "HEAD").is_file() else None
        if head is None:
            raise NotFound(f"task {task_id}: its branch is not in the service's mirror yet")
        env = {**git_env(), "GIT_DIR": str(mirror)}
        base = self._base(repo, mirror, env)
        if base is None:
            raise NotFound(f"task {task_id}: no base branch to compare its branch with")
        try:
            stats, complete = branch_diff.file_stats(mirror, base, head, env)
            pages = dp.paginate(stats)
            if page > len(pages):
                raise Invalid(f"there are {len(pages)} pages", field="page")
            chosen = [stats[i] for i in pages[page - 1]]
            pieces, whole = branch_diff.patches(mirror, base, head, [s.path for s in chosen], env)
        except GitError as exc:
            raise Unavailable(f"task {task_id}: git could not read the diff: {exc}") from None
        files = []
        for i, stat in enumerate(chosen):
            piece = pieces[i] if i < len(pieces) else ""
            files.append(
                {
                    "path": _shown(stat.path),
                    "binary": stat.binary,
                    "additions": stat.additions,
                    "deletions": stat.deletions,
                    "patch": piece,
                    "truncated": not whole and i >= len(pieces) - 1,
                }
            )
        return {
            "task_id": task_id,
            "branch": branch,
            "base": base,
            "head": head,
            "page": page,
            "pages": len(pages),
            "files_total": len(stats),
            "files": files,
            "truncated": not (complete and whole),
        }

    def _base(self, repo: str, mirror: Path, env: dict[str, str]) -> str | None:
        """The base commit; for a PROJECTS_DIR repository, `env` also gets the project's objects."""
        projects = self._settings.resolved_projects_dir
        project = project_of(projects, repo)
        if project is None:
            return rev_parse(mirror, f"{UPSTREAM}/HEAD")
        common = run_git(
            ["-C", str(project), "rev-parse", "--path-format=absolute", "--git-common-dir"], env=git_env()
        )
        if common.returncode != 0:
            return None
        env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = os.fspath(Path(common.stdout.strip()) / "objects")
        return rev_parse(project, "HEAD")
