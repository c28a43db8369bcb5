"""The GitHub API: token status, repositories, clone URLs, pushes, pull requests, remotes."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.forge.errors import ForgeError, ForgeUnavailable, RateLimited
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
from orchestrator.forge.names import check_branch, head_spec, workspace_path
from orchestrator.models import ErrorBody
from orchestrator.settings import Settings

GITHUB_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    403: {"model": ErrorBody, "description": "Refused by GitHub, or authenticated clone URLs are off"},
    502: {"model": ErrorBody, "description": "GitHub answered with an unexpected status"},
}
router = APIRouter(prefix="/api/github", tags=["github"], responses=GITHUB_RESPONSES)

AUTHENTICATED_URL_REFUSED = (
    "an authenticated clone URL carries the GitHub token: it is only given when the service has "
    "ORCHESTRATOR_API_TOKEN set and the caller sends it"
)


def get_github(request: Request) -> GitHubClient:
    client: GitHubClient | None = getattr(request.app.state, "github", None)
    if client is None:
        raise HTTPException(503, "the GitHub client is not set up", headers={"Retry-After": "5"})
    return client


GitHubDep = Annotated[GitHubClient, Depends(get_github)]
PullNumber = Annotated[int, Path(ge=1, le=2**31)]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.services.settings
    return settings


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
def clone_url(
    repo: str, request: Request, response: Response, github: GitHubDep, authenticated: bool = False
) -> CloneUrl:
    ref = github.ref(repo)
    if not authenticated:
        return CloneUrl(repo=ref.full_name, url=github.clone_url(repo), authenticated=False)
    # a generated token is handed to the local dashboard: only a token the operator set guards this one
    if not _settings(request).api_token or getattr(request.app.state, "token_generated", False):
        raise HTTPException(403, AUTHENTICATED_URL_REFUSED)
    response.headers["Cache-Control"] = "no-store"
    return CloneUrl(repo=ref.full_name, url=github.authenticated_clone_url(repo), authenticated=True)


@router.post("/push", response_model=PushResult)
def push(body: PushBody, request: Request, github: GitHubDep) -> PushResult:
    github.ref(body.repo)
    check_branch(body.branch)
    path = workspace_path(_settings(request).resolved_workspaces_dir, body.path)
    return github.push(body.repo, path, body.branch)


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
    github: GitHubDep,
    state: PullState = "open",
    head: Annotated[str | None, Query(max_length=300)] = None,
    base: Annotated[str | None, Query(max_length=255)] = None,
) -> list[PullRequest]:
    if head is not None:
        head_spec(head, github.ref(repo).owner)
    return github.list_pulls(repo, state=state, head=head, base=base)


@router.post("/ensure-remote/{repo:path}", response_model=RemoteResult)
def ensure_remote(repo: str, body: EnsureRemoteBody, request: Request, github: GitHubDep) -> RemoteResult:
    github.ref(repo)
    path = workspace_path(_settings(request).resolved_workspaces_dir, body.path)
    return github.ensure_remote(repo, path)


def _answer(request: Request, exc: ForgeError) -> JSONResponse:
    client: GitHubClient | None = getattr(request.app.state, "github", None)
    detail = client.redact(exc.message) if client is not None else exc.message
    content: dict[str, Any] = {"detail": detail}
    headers = {}
    if isinstance(exc, ForgeUnavailable):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        content["retry_after"] = exc.retry_after
    if isinstance(exc, RateLimited):
        content["retry_at"] = exc.retry_at.isoformat()
    return JSONResponse(content, status_code=exc.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ForgeError)
    async def _forge_error(request: Request, exc: ForgeError) -> JSONResponse:
        return _answer(request, exc)
