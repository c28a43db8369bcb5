"""GitHub and git: the REST client, the service's mirrors and branch pushes, tokens kept out of messages."""

from orchestrator.forge.errors import (
    Conflict,
    Forbidden,
    ForgeError,
    ForgeFailed,
    ForgeInputError,
    ForgeUnavailable,
    GitError,
    NotConfigured,
    NotFound,
    NotMergeable,
    PushRejected,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from orchestrator.forge.git import push_branch
from orchestrator.forge.github import GitHubClient
from orchestrator.forge.names import RepoRef, repo_ref, workspace_path

__all__ = [
    "Conflict",
    "Forbidden",
    "ForgeError",
    "ForgeFailed",
    "ForgeInputError",
    "ForgeUnavailable",
    "GitError",
    "GitHubClient",
    "NotConfigured",
    "NotFound",
    "NotMergeable",
    "PushRejected",
    "RateLimited",
    "RepoRef",
    "Unauthorized",
    "ValidationFailed",
    "push_branch",
    "repo_ref",
    "workspace_path",
]
