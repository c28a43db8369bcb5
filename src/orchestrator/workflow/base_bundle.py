"""Before a conflict fix-up: the base branch's current commits within the agent's reach, as a git bundle.

The agent's checkout lacks the commits the base branch gained since it was made, and an agent reaches no
network but the model API. The service fetches the upstream into its own mirror, writes a bundle of the
base branch from there (no git runs in the agent's checkout, and the agent never sees the mirror), and
copies it into a new directory of a random name beside the task's checkouts, which the fix-up gets as an
`--add-dir` (every runtime exposes those: bwrap and Docker bind them, Kubernetes mounts them from the PVC).
Outside the checkout, the bundle cannot be committed by a `git add -A`; the copy is created with
O_CREAT|O_EXCL|O_NOFOLLOW in directories opened without following links, so nothing placed there before is
followed or overwritten."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.agents import workspace
from orchestrator.forge.names import check_branch
from orchestrator.forge.publisher import Publisher

DIR_PREFIX = ".base-"  # a checkout's directory is named after its repository, which cannot start with "."
BUNDLE_NAME = "base.bundle"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class BaseBundle:
    directory: Path  # the fix-up's `--add-dir`
    path: Path  # the bundle, as the agent sees it (every runtime mounts it at the same path)
    sha: str  # the base branch's commit it holds


def hand_base(publisher: Publisher, task_root: Path, repo: str, base: str) -> BaseBundle:
    """Fetches `repo`'s upstream into the mirror and places a bundle of its `base` branch in a new
    directory under `task_root` (earlier ones removed). Raises ForgeError or OSError."""
    check_branch(base, "base")
    scratch_root = publisher.mirrors.root / ".tmp"
    scratch_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = Path(tempfile.mkdtemp(dir=scratch_root))
    try:
        written = scratch / BUNDLE_NAME
        sha = publisher.bundle_base(repo, base, written)
        directory = place(task_root, written)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return BaseBundle(directory, directory / BUNDLE_NAME, sha)


def place(task_root: Path, source: Path, name: str | None = None) -> Path:
    """Copies `source` (a file of the service's) to `<task_root>/<name>/base.bundle`, `name` a new random
    one unless given; the directory is made by this call (an entry already there, link or not, is an
    error, never followed) and the file created exclusively in it. Raises OSError."""
    name = name or f"{DIR_PREFIX}{secrets.token_hex(12)}"
    root_fd = os.open(task_root, _DIR_FLAGS)
    try:
        _remove_earlier(root_fd, task_root)
        os.mkdir(name, 0o700, dir_fd=root_fd)
        dir_fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
        try:
            out = os.open(BUNDLE_NAME, _NEW_FILE, 0o600, dir_fd=dir_fd)
            with os.fdopen(out, "wb") as dst, source.open("rb") as src:
                shutil.copyfileobj(src, dst)
        finally:
            os.close(dir_fd)
    finally:
        os.close(root_fd)
    return task_root / name


def _remove_earlier(root_fd: int, task_root: Path) -> None:
    """The bundles of earlier fix-ups (a task has one agent at a time); links are removed, not followed."""
    with os.scandir(root_fd) as entries:
        earlier = [e.name for e in entries if e.name.startswith(DIR_PREFIX)]
    for entry in earlier:
        workspace.remove(task_root / entry)
