"""GitHub as the API asks for it: names checked before GitHub or git is asked, a workspace's branch
pushed from the service's mirror, and the two requests the service no longer serves."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from orchestrator.errors import Gone
from orchestrator.forge.github import GitHubClient
from orchestrator.forge.models import CloneUrl, PullRequest, PullState, PushResult
from orchestrator.forge.names import check_branch, head_spec, workspace_path
from orchestrator.forge.publisher import Publisher

AUTHENTICATED_URL_GONE = (
    "authenticated clone URLs are no longer given: they carried the GitHub token to any API client. "
    "Clone with your own credentials; the service pushes task branches itself"
)
ENSURE_REMOTE_GONE = (
    "ensure-remote is gone: the service never uses a workspace's remotes (agents can change them); "
    "it pushes from its own mirror to GITHUB_GIT_URL/<owner>/<repo>.git"
)


class GitHubRequests:
    def __init__(self, github: GitHubClient, publisher: Publisher, workspaces_dir: Path) -> None:
        self._github = github
        self._publisher = publisher
        self._workspaces_dir = workspaces_dir

    def clone_url(self, repo: str, *, authenticated: bool) -> CloneUrl:
        ref = self._github.ref(repo)
        if authenticated:
            raise Gone(AUTHENTICATED_URL_GONE)
        return CloneUrl(repo=ref.full_name, url=self._github.clone_url(repo), authenticated=False)

    def push(self, repo: str, workspace: str, branch: str) -> PushResult:
        """The workspace's branch taken into the service's mirror (no git runs in the workspace) and pushed
        from there."""
        self._github.ref(repo)
        check_branch(branch)
        path = workspace_path(self._workspaces_dir, workspace)
        return self._publisher.take_and_push(repo, path, branch)

    def list_pulls(
        self, repo: str, state: PullState, head: str | None, base: str | None
    ) -> list[PullRequest]:
        if head is not None:
            head_spec(head, self._github.ref(repo).owner)
        return self._github.list_pulls(repo, state=state, head=head, base=base)

    def ensure_remote(self, repo: str, workspace: str) -> NoReturn:
        """Checks the names as it always did, then refuses: the request is no longer served."""
        self._github.ref(repo)
        workspace_path(self._workspaces_dir, workspace)
        raise Gone(ENSURE_REMOTE_GONE)
