"""Repository, branch and workspace names from requests, checked before they reach GitHub or git."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.forge.errors import ForgeInputError

_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}")
_REPO = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+-]{0,254}")
_BRANCH_FORBIDDEN = ("..", "//", "/.", "@{", ".lock/")


@dataclass(frozen=True)
class RepoRef:
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def __str__(self) -> str:
        return self.full_name


def check_owner(owner: str, field: str = "owner") -> str:
    if not _OWNER.fullmatch(owner):
        raise ForgeInputError(
            field, f"{owner[:100]!r} is not a GitHub account name (letters, digits, '-', '_'; 1-39)"
        )
    return owner


def check_repo_name(name: str, field: str = "repo") -> str:
    if not _REPO.fullmatch(name) or ".." in name or name.endswith("."):
        raise ForgeInputError(
            field,
            f"{name[:100]!r} is not a repository name (letters, digits, '.', '-', '_'; "
            "no leading '.' or '-', no '..')",
        )
    return name


def repo_ref(repo: str, default_owner: str, field: str = "repo") -> RepoRef:
    """`name` is taken under `default_owner`; `owner/name` names its owner."""
    if repo.count("/") > 1 or repo.startswith("/"):
        raise ForgeInputError(field, f"{repo[:100]!r}: expected 'name' or 'owner/name'")
    owner, _, name = repo.rpartition("/")
    return RepoRef(check_owner(owner or default_owner, field), check_repo_name(name, field))


def check_branch(branch: str, field: str = "branch") -> str:
    bad = (
        not _BRANCH.fullmatch(branch)
        or any(part in branch + "/" for part in _BRANCH_FORBIDDEN)
        or branch.endswith(("/", ".", ".lock"))
        or branch == "HEAD"
    )
    if bad:
        raise ForgeInputError(
            field,
            f"{branch[:100]!r} is not an acceptable branch name (letters, digits, '.', '_', '-', '/', '+'; "
            "no leading '-' or '.', no '..')",
        )
    return branch


def head_spec(head: str, default_owner: str) -> tuple[str, str]:
    """A PR head, `branch` or `owner:branch`: the (owner, branch) it names."""
    owner, sep, branch = head.rpartition(":")
    if sep:
        return check_owner(owner, "head"), check_branch(branch, "head")
    return default_owner, check_branch(head, "head")


def workspace_path(workspaces_dir: Path, given: str) -> Path:
    """A workspace named relative to `workspaces_dir` (or absolute), resolved, and inside it."""
    if not given or "\x00" in given:
        raise ForgeInputError("path", "a workspace path is required")
    root = workspaces_dir.resolve()
    path = Path(given) if Path(given).is_absolute() else root / given
    resolved = path.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise ForgeInputError("path", f"{given[:200]!r} is not inside the workspaces directory")
    if not resolved.is_dir():
        raise ForgeInputError("path", f"workspace {given[:200]!r} does not exist")
    return resolved
