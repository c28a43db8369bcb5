"""GitHub and git: the REST client, branch pushes and remotes, with tokens kept out of every message."""

from orchestrator.forge.errors import (
    Conflict,
    ForgeError,
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
from orchestrator.forge.git import ensure_remote, push_branch
from orchestrator.forge.github import GitHubClient
from orchestrator.forge.names import RepoRef, repo_ref, workspace_path

__all__ = [
    "Conflict",
    "ForgeError",
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
    "ensure_remote",
    "push_branch",
    "repo_ref",
    "workspace_path",
]
