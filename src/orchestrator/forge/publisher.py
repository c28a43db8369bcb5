"""A task branch from an agent's checkout to GitHub: into the service's mirror, then pushed from there
to the one URL configured for the repository (GITHUB_GIT_URL + /owner/repo.git)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.domain.git_url import repo_git_url
from orchestrator.forge.errors import NotConfigured
from orchestrator.forge.mirror import Mirrors
from orchestrator.forge.models import PushResult
from orchestrator.forge.names import RepoRef, repo_ref

INSTRUCTIONS_CAP = 20_000


class Publisher:
    def __init__(self, mirrors: Mirrors, git_url: str, owner: str, token: str | None) -> None:
        self.mirrors = mirrors
        self._git_url = git_url
        self._owner = owner
        self._token = token

    @property
    def can_push(self) -> bool:
        return bool(self._token)

    def ref(self, repo: str) -> RepoRef:
        return repo_ref(repo, self._owner)

    def url(self, repo: str) -> str:
        ref = self.ref(repo)
        return repo_git_url(self._git_url, ref.owner, ref.name)

    def take(self, repo: str, checkout: Path, branch: str) -> str:
        """The branch of the checkout into the mirror; its commit id."""
        return self.mirrors.fetch_branch(self.ref(repo), checkout, branch)

    def push(self, repo: str, branch: str) -> PushResult:
        if not self._token:
            raise NotConfigured("no GitHub token is configured (GITHUB_TOKEN): nothing can be pushed")
        return self.mirrors.push(self.ref(repo), branch, self.url(repo), self._token)

    def take_and_push(self, repo: str, checkout: Path, branch: str) -> PushResult:
        self.take(repo, checkout, branch)
        return self.push(repo, branch)

    def read_file(self, repo: str, branch: str, name: str, cap: int = INSTRUCTIONS_CAP) -> str | None:
        return self.mirrors.read_file(self.ref(repo), branch, name, cap)

    def has_branch(self, repo: str, branch: str) -> bool:
        return self.mirrors.tip(self.ref(repo), branch) is not None

    def pushed(self, repo: str, branch: str, sha: str) -> bool:
        return self.mirrors.pushed(self.ref(repo), branch, sha)

    def bundle_base(self, repo: str, base: str, dest: Path) -> str:
        """The upstream's `base` branch fetched into the mirror now, then written from there as a git
        bundle at `dest` (a path of the service's); the commit it holds."""
        ref = self.ref(repo)
        self.mirrors.sync(ref, self.url(repo), self._token)
        return self.mirrors.bundle(ref, base, dest)

    def follow(self, repo: str, branch: str) -> str:
        """The PR branch someone else pushed, fetched into the mirror (see Mirrors.follow); its tip."""
        return self.mirrors.follow(self.ref(repo), branch, self.url(repo), self._token)

    def onto_checkout(self, repo: str, dest: Path, branch: str) -> str:
        return self.mirrors.onto_checkout(self.ref(repo), dest, branch)
