"""Workspaces made without a git process: git itself must see what `git init` (and `checkout -B`) leave."""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.agents import workspace


def _git(repo: Path, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_a_task_workspace_is_an_empty_repository_on_the_task_branch(tmp_path: Path) -> None:
    checkouts = workspace.prepare_task(tmp_path / "ws", tmp_path / "projects", "t-1", "Fix the bug", [])

    repo = checkouts.primary
    assert _git(repo, "rev-parse", "--show-toplevel") == str(repo)
    assert _git(repo, "symbolic-ref", "HEAD") == f"refs/heads/{checkouts.branch}"
    (repo / "f.txt").write_text("x\n")
    _git(repo, "add", "f.txt")
    _git(repo, "-c", "user.name=a", "-c", "user.email=a@example.com", "commit", "-q", "-m", "first")
    assert _git(repo, "branch", "--show-current") == checkouts.branch
    _git(repo, "fsck", "--strict")


def test_a_plain_workspace_is_a_repository_and_a_second_prepare_keeps_it(tmp_path: Path) -> None:
    path = workspace.prepare(tmp_path / "a", None, tmp_path / "projects")
    assert _git(path, "rev-parse", "--is-inside-work-tree") == "true"
    assert _git(path, "status", "--porcelain") == ""
    (path / "kept").write_text("mine")

    workspace.prepare(path, None, tmp_path / "projects")

    assert (path / "kept").read_text() == "mine"
