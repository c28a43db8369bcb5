"""Wire models of the GitHub API: what the service answers, and the bodies it accepts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MergeMethod = Literal["merge", "squash", "rebase"]
PullState = Literal["open", "closed", "all"]

_NAME = 200
_SHA = r"^[0-9a-f]{40}([0-9a-f]{24})?$"


class RateLimit(BaseModel):
    limit: int
    remaining: int
    used: int
    reset_at: datetime


class TokenStatus(BaseModel):
    configured: bool
    valid: bool | None = None
    login: str | None = None
    scopes: list[str] | None = Field(None, description="None for tokens that do not report scopes")
    rate_limit: RateLimit | None = None
    api_url: str
    owner: str
    error: str | None = None


class RepoInfo(BaseModel):
    full_name: str
    owner: str
    name: str
    default_branch: str
    private: bool
    visibility: str | None = None
    html_url: str
    clone_url: str = Field(description="Plain HTTPS clone URL, without credentials")
    description: str | None = None
    archived: bool = False
    fork: bool = False


class DefaultBranch(BaseModel):
    repo: str
    default_branch: str


class CloneUrl(BaseModel):
    repo: str
    url: str
    authenticated: bool


class BranchRef(BaseModel):
    ref: str
    sha: str
    label: str | None = None


class PullRequest(BaseModel):
    number: int
    state: str
    title: str
    body: str | None = None
    html_url: str
    draft: bool = False
    head: BranchRef
    base: BranchRef
    user: str | None = None
    merged: bool = False
    merged_at: datetime | None = None
    mergeable: bool | None = None
    mergeable_state: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class CreatedPullRequest(PullRequest):
    created: bool = Field(description="False when an open pull request for this head existed already")


class MergeResult(BaseModel):
    repo: str
    number: int
    merged: bool
    sha: str | None
    message: str
    merge_method: MergeMethod


class PushResult(BaseModel):
    branch: str
    remote_url: str
    sha: str
    output: str


class RemoteResult(BaseModel):
    path: str
    remote: str
    url: str
    action: Literal["added", "updated", "unchanged"]


class PushBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: str = Field(min_length=1, max_length=_NAME)
    branch: str = Field(min_length=1, max_length=255)
    path: str = Field(min_length=1, max_length=4096)


class CreatePullBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: str = Field(min_length=1, max_length=_NAME)
    head: str = Field(min_length=1, max_length=300)
    base: str | None = Field(None, min_length=1, max_length=255)
    title: str = Field(min_length=1, max_length=256)
    body: str = Field("", max_length=65_536)
    draft: bool = False


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merge_method: MergeMethod = "merge"
    commit_title: str | None = Field(None, max_length=256)
    commit_message: str | None = Field(None, max_length=65_536)
    sha: str | None = Field(None, pattern=_SHA, description="Merge only if the head is still at this commit")


class EnsureRemoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=4096)
