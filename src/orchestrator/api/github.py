"""The GitHub API: token status, repositories, clone URLs, pushes, pull requests, remotes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from orchestrator.api.errors import GITHUB_RESPONSES
from orchestrator.errors import Unavailable
from orchestrator.forge.github import GitHubClient
from orchestrator.forge.models import (
    CloneUrl,
    CreatedPullRequest,
    CreatePullBody,
    DefaultBranch,
    EnsureRemoteBody,
    MergeBody,
    MergeResult,
    PullRequest,
    PullState,
    PushBody,
    PushResult,
    RemoteResult,
    RepoInfo,
    TokenStatus,
)
from orchestrator.forge.requests import GitHubRequests

router = APIRouter(prefix="/api/github", tags=["github"], responses=GITHUB_RESPONSES)


def get_github(request: Request) -> GitHubClient:
    client: GitHubClient | None = getattr(request.app.state, "github", None)
    if client is None:
        raise Unavailable("the GitHub client is not set up", retry_after=5)
    return client


GitHubDep = Annotated[GitHubClient, Depends(get_github)]
PullNumber = Annotated[int, Path(ge=1, le=2**31)]


def github_requests(request: Request, github: GitHubDep) -> GitHubRequests:
    services = request.app.state.services
    return GitHubRequests(github, services.publisher, services.settings.resolved_workspaces_dir)


RequestsDep = Annotated[GitHubRequests, Depends(github_requests)]


@router.get("/status", response_model=TokenStatus)
def status(github: GitHubDep) -> TokenStatus:
    return github.status()


@router.get("/repo/{repo:path}/default-branch", response_model=DefaultBranch)
def default_branch(repo: str, github: GitHubDep) -> DefaultBranch:
    ref = github.ref(repo)
    return DefaultBranch(repo=ref.full_name, default_branch=github.default_branch(repo))


@router.get("/repo/{repo:path}", response_model=RepoInfo)
def repo_info(repo: str, github: GitHubDep) -> RepoInfo:
    return github.repo(repo)


@router.get("/clone-url/{repo:path}", response_model=CloneUrl)
def clone_url(repo: str, requests: RequestsDep, authenticated: bool = False) -> CloneUrl:
    return requests.clone_url(repo, authenticated=authenticated)


@router.post("/push", response_model=PushResult)
def push(body: PushBody, requests: RequestsDep) -> PushResult:
    """The branch of a workspace is taken into the service's mirror (no git runs in the workspace) and
    pushed from there to GITHUB_GIT_URL/<owner>/<repo>.git."""
    return requests.push(body.repo, body.path, body.branch)


@router.post(
    "/pr",
    response_model=CreatedPullRequest,
    status_code=201,
    responses={200: {"model": CreatedPullRequest, "description": "An open PR for this head existed"}},
)
def create_pull(body: CreatePullBody, response: Response, github: GitHubDep) -> CreatedPullRequest:
    pull = github.create_pull(
        body.repo, head=body.head, title=body.title, body=body.body, base=body.base, draft=body.draft
    )
    if not pull.created:
        response.status_code = 200
    return pull


@router.get("/pr/{repo:path}/{pr_number:int}", response_model=PullRequest)
def get_pull(repo: str, pr_number: PullNumber, github: GitHubDep) -> PullRequest:
    return github.get_pull(repo, pr_number)


@router.post("/pr/{repo:path}/{pr_number:int}/merge", response_model=MergeResult)
def merge_pull(
    repo: str,
    pr_number: PullNumber,
    github: GitHubDep,
    body: Annotated[MergeBody | None, Body()] = None,
) -> MergeResult:
    merge = body or MergeBody()
    return github.merge_pull(
        repo,
        pr_number,
        merge_method=merge.merge_method,
        commit_title=merge.commit_title,
        commit_message=merge.commit_message,
        sha=merge.sha,
    )


@router.get("/prs/{repo:path}", response_model=list[PullRequest])
def list_pulls(
    repo: str,
    requests: RequestsDep,
    state: PullState = "open",
    head: Annotated[str | None, Query(max_length=300)] = None,
    base: Annotated[str | None, Query(max_length=255)] = None,
) -> list[PullRequest]:
    return requests.list_pulls(repo, state, head, base)


@router.post("/ensure-remote/{repo:path}", response_model=RemoteResult)
def ensure_remote(repo: str, body: EnsureRemoteBody, requests: RequestsDep) -> RemoteResult:
    requests.ensure_remote(repo, body.path)
