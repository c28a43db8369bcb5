"""Workspaces made without a git process: git itself must see what `git init` (and `checkout -B`) leave."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

from orchestrator.agents import workspace
from orchestrator.agents.blanks import FOLDER, READY, Blanks


def _git(repo: Path, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_a_task_workspace_is_an_empty_repository_on_the_task_branch(tmp_path: Path) -> None:
    checkouts = workspace.prepare_task(tmp_path / "ws", tmp_path / "projects", "t-1", "Fix the bug", [])

    _assert_an_empty_repository_on_its_branch(checkouts)


def _assert_an_empty_repository_on_its_branch(checkouts: workspace.TaskCheckouts) -> None:
    """git itself takes the checkout for a repository on the task's branch, and a first commit lands."""
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


def _ready(blanks_parent: Path, count: int, timeout: float = 10) -> list[Path]:
    deadline = time.monotonic() + timeout
    while True:
        made = [p for p in (blanks_parent / FOLDER).glob("*/*") if not p.name.endswith(".part")]
        if len(made) >= count:
            return made
        assert time.monotonic() < deadline, f"{len(made)} blanks made, {count} wanted"
        time.sleep(0.01)


def test_workspaces_made_ahead_are_repositories_and_are_made_again(tmp_path: Path) -> None:
    parent = tmp_path / "ws"
    blanks = Blanks(parent, workspace.fresh_layout)
    try:
        first = workspace.prepare_task(parent, tmp_path / "projects", "t-1", "One", [], blanks=blanks)
        assert _git(first.primary, "symbolic-ref", "HEAD") == f"refs/heads/{first.branch}"  # made in place
        ready = _ready(parent, READY)

        second = workspace.prepare_task(parent, tmp_path / "projects", "t-2", "Two", [], blanks=blanks)

        assert sum(p.exists() for p in ready) == READY - 1, "the second checkout took a blank"
        _assert_an_empty_repository_on_its_branch(second)
        assert _ready(parent, READY), "the blank taken is made again"
    finally:
        blanks.close()


def test_a_blank_never_lands_on_a_workspace_that_has_files(tmp_path: Path) -> None:
    parent = tmp_path / "ws"
    blanks = Blanks(parent, workspace.fresh_layout)
    try:
        assert not blanks.take(parent / "warm-up")  # none made yet: the caller makes its own
        _ready(parent, READY)
        kept = parent / "kept"
        kept.mkdir()
        (kept / "mine").write_text("mine")

        assert not blanks.take(kept)

        assert sorted(p.name for p in kept.iterdir()) == ["mine"]
        assert blanks.take(parent / "new") and (parent / "new" / ".git" / "objects" / "info").is_dir()
    finally:
        blanks.close()


def test_blanks_an_earlier_service_left_are_not_handed_out(tmp_path: Path) -> None:
    parent = tmp_path / "ws"
    planted = parent / FOLDER / ("0" * 32)
    (planted / ".git" / "hooks").mkdir(parents=True)
    (planted / ".git" / "hooks" / "post-checkout").write_text("#!/bin/sh\necho planted\n")
    blanks = Blanks(parent, workspace.fresh_layout)
    try:
        blanks.take(parent / "warm-up")
        _ready(parent, READY)
        assert not planted.exists()
        for i in range(READY):
            dest = parent / f"w{i}"
            if blanks.take(dest):
                assert not (dest / ".git" / "hooks").exists()
    finally:
        blanks.close()


def test_a_second_service_on_the_same_directories_leaves_the_first_ones_blanks_alone(tmp_path: Path) -> None:
    parent = tmp_path / "ws"
    first = Blanks(parent, workspace.fresh_layout)
    second = Blanks(parent, workspace.fresh_layout)
    try:
        first.take(parent / "warm-up-1")
        ready = _ready(parent, READY)
        second.take(parent / "warm-up-2")  # its filler starts: the first's folder is locked, so kept
        _ready(parent, 2 * READY)

        assert all(p.exists() for p in ready)
        assert first.take(parent / "w1")
        assert (parent / "w1" / ".git" / "config").is_file()
    finally:
        first.close()
        second.close()


def test_a_plain_workspace_from_a_blank_is_on_the_branch_git_init_would_choose(tmp_path: Path) -> None:
    """A blank is made with HEAD on the default branch; a workspace that needs no other branch keeps it."""
    parent = tmp_path / "ws"
    blanks = Blanks(parent, workspace.fresh_layout)
    try:
        made_in_place = workspace.prepare(parent / "first", None, tmp_path / "projects", blanks=blanks)
        ready = _ready(parent, READY)

        from_blank = workspace.prepare(parent / "second", None, tmp_path / "projects", blanks=blanks)

        assert sum(p.exists() for p in ready) == READY - 1, "the second workspace took a blank"
        head = _git(made_in_place, "symbolic-ref", "HEAD")
        assert _git(from_blank, "symbolic-ref", "HEAD") == head
        assert _git(from_blank, "rev-parse", "--show-toplevel") == str(from_blank)
    finally:
        blanks.close()


def test_a_filler_stopped_lets_its_folder_go_to_the_next_start(tmp_path: Path) -> None:
    parent = tmp_path / "ws"
    first = Blanks(parent, workspace.fresh_layout)
    first.start()
    folder = _ready(parent, READY)[0].parent
    first.close()
    deadline = time.monotonic() + 10
    while True:  # its lock is let go once the filler has stopped (the process lives on)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            assert time.monotonic() < deadline, "the stopped filler still holds its folder"
            time.sleep(0.01)
        finally:
            os.close(fd)
    second = Blanks(parent, workspace.fresh_layout)
    try:
        second.start()
        while folder.exists():  # an earlier filler's folder is removed by the next one
            assert time.monotonic() < deadline + 10, "the stopped filler's folder is still there"
            time.sleep(0.01)
        _ready(parent, READY)
    finally:
        second.close()
