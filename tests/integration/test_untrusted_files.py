"""Reads of agent-writable files on the real file system: links, FIFOs, sparse giants, and the run
directory's output files swapped for links."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from orchestrator.domain.types import LogStream
from orchestrator.runtimes import files
from orchestrator.untrusted_files import UntrustedFileError, read_capped, read_text

SECRET = "secret-value-0c6f2b"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "checkout"
    path.mkdir()
    return path


def test_a_regular_file_is_read_up_to_the_cap(root: Path) -> None:
    (root / "docs").mkdir()
    (root / "docs" / "DEPLOY.md").write_text("abcdef")
    assert read_text(root, "docs/DEPLOY.md", 4) == "abcd"
    assert read_text(root, "docs/DEPLOY.md", 100) == "abcdef"
    assert read_text(root, "missing.md", 100) is None


def test_links_anywhere_on_the_path_are_not_followed(root: Path, secret: Path) -> None:
    (root / "DEPLOY.md").symlink_to(secret)
    (root / "environ").symlink_to("/proc/self/environ")
    (root / "docs").symlink_to(secret.parent)
    (root / "up").symlink_to("..")
    for name in ("DEPLOY.md", "environ", f"docs/{secret.name}", f"up/{secret.name}"):
        assert read_text(root, name, 1000) is None, name
    for name in (f"../{secret.name}", "/etc/passwd", ""):
        with pytest.raises(UntrustedFileError):
            read_capped(root, name, 1000)


def test_a_fifo_a_directory_and_a_linked_root_are_refused_without_blocking(
    root: Path, tmp_path: Path
) -> None:
    os.mkfifo(root / "VERIFY.md")
    (root / "DIR.md").mkdir()
    started = time.monotonic()
    assert read_text(root, "VERIFY.md", 1000) is None
    assert read_text(root, "DIR.md", 1000) is None
    assert time.monotonic() - started < 1
    linked_root = tmp_path / "linked-root"
    linked_root.symlink_to(root)
    (root / "ok.md").write_text("ok")
    assert read_text(linked_root, "ok.md", 100) is None


def test_a_sparse_100_gb_file_costs_one_capped_read(root: Path) -> None:
    with (root / "DEPLOY.md").open("wb") as f:
        f.truncate(100 << 30)
    started = time.monotonic()
    assert read_capped(root, "DEPLOY.md", 20_000) == b"\0" * 20_000
    assert time.monotonic() - started < 1


def test_run_dir_files_swapped_for_links_read_as_empty(tmp_path: Path, secret: Path) -> None:
    run_dir = tmp_path / "run"
    files.create(run_dir)
    (run_dir / "stdout").unlink()
    (run_dir / "stdout").symlink_to(secret)
    exit_target = tmp_path / "number"
    exit_target.write_text("7\n")
    (run_dir / files.EXIT_CODE_FILE).symlink_to(exit_target)
    output = files.OutputFiles(run_dir)
    try:
        assert output.read(LogStream.STDOUT, 0, 1000) == b""
        assert output.exit_code() is None
    finally:
        output.close()
    (run_dir / files.EXIT_CODE_FILE).unlink()
    (run_dir / files.EXIT_CODE_FILE).write_text("3\n")
    assert files.recorded_exit_code(run_dir) == 3
    (run_dir / "stderr").write_bytes(b"line\n")
    again = files.OutputFiles(run_dir)
    try:
        assert again.read(LogStream.STDERR, 0, 1000) == b"line\n"
    finally:
        again.close()


def test_create_refuses_to_write_through_a_planted_link(tmp_path: Path, secret: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "stdout").symlink_to(secret)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        files.create(run_dir)
    assert secret.read_text() == SECRET


def test_a_workspace_shares_no_file_with_its_project(tmp_path: Path) -> None:
    """A hard-linked object file would let an agent (the same user) chmod and rewrite the project's pack,
    and so every later checkout of it."""
    from orchestrator.agents import workspace
    from tests.support.repos import remote_with_project

    _, project = remote_with_project(tmp_path, "calc")
    checkout = workspace.prepare(tmp_path / "ws" / "calc", "calc", tmp_path / "projects", "task/t-1")
    inodes = {(f.stat().st_dev, f.stat().st_ino) for f in (project / ".git").rglob("*") if f.is_file()}
    shared = [
        f
        for f in (checkout / ".git").rglob("*")
        if f.is_file() and (f.stat().st_dev, f.stat().st_ino) in inodes
    ]
    assert shared == [], shared
