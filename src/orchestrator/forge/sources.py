"""Repositories that are not under PROJECTS_DIR come from the forge: fetched into the service's mirror
(GITHUB_GIT_URL + /owner/repo.git, the token only in git's environment), and each task's checkout made
from the mirror on the same disk."""

from __future__ import annotations

from pathlib import Path

from orchestrator.agents.workspace import in_projects
from orchestrator.domain.git_url import repo_git_url
from orchestrator.forge.errors import ForgeError, UnknownRepository
from orchestrator.forge.mirror import Mirrors
from orchestrator.forge.names import repo_ref
from orchestrator.settings import Settings


class ForgeRepos:
    def __init__(self, mirrors: Mirrors, git_url: str, owner: str, token: str | None) -> None:
        self._mirrors = mirrors
        self._git_url = git_url
        self._owner = owner
        self._token = token

    @classmethod
    def of(cls, settings: Settings) -> ForgeRepos:
        return cls(
            _mirrors_at(settings.mirrors_dir),
            settings.github_git_url,
            settings.github_owner,
            settings.github_token,
        )

    def check(self, repo: str) -> None:
        """`UnknownRepository` (an Invalid naming `repo`) when the forge does not have it; a forge that
        cannot be reached now is not an answer (the task fails at its start if it still cannot)."""
        ref = repo_ref(repo, self._owner)
        try:
            self._mirrors.probe(ref, repo_git_url(self._git_url, ref.owner, ref.name), self._token)
        except UnknownRepository:
            raise
        except ForgeError:
            return

    def checkout(self, repo: str, dest: Path) -> str | None:
        """Fetches `repo` into the mirror, then makes `dest` a checkout of it; the default branch."""
        ref = repo_ref(repo, self._owner)
        url = repo_git_url(self._git_url, ref.owner, ref.name)
        self._mirrors.sync(ref, url, self._token)
        return self._mirrors.checkout(ref, dest, url)

    def read_default_file(self, repo: str, name: str, cap: int) -> bytes | None:
        """`name` on the default branch of `repo` as the mirror last fetched it (no fetch here)."""
        return self._mirrors.read_default_file(repo_ref(repo, self._owner), name, cap)


_SHARED: dict[Path, Mirrors] = {}


def _mirrors_at(root: Path) -> Mirrors:
    """One Mirrors per directory in the process, so that its per-repository locks are shared."""
    return _SHARED.setdefault(root, Mirrors(root))


def check_task_repos(settings: Settings, repos: list[str]) -> None:
    """Before a task is queued: each repository is under PROJECTS_DIR or at GITHUB_GIT_URL."""
    forge = ForgeRepos.of(settings)
    for repo in repos:
        if not in_projects(settings.resolved_projects_dir, repo):
            forge.check(repo)
