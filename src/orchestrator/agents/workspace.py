"""An agent's working directory: a clone of the repository from PROJECTS_DIR, or a fresh git repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99})?$")


class WorkspaceError(Exception):
    pass


def valid_repo_name(name: str) -> bool:
    return REPO_NAME.match(name) is not None and ".." not in name and not name.endswith(".")


def _git(args: list[str], cwd: Path) -> None:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise WorkspaceError(f"git {args[0]} failed: {proc.stderr.strip()[:500]}")


def prepare(path: Path, repo: str | None, projects_dir: Path) -> Path:
    """Makes `path` ready for an agent; an existing workspace (a retry) is kept as it is."""
    if path.is_dir() and any(path.iterdir()):
        return path
    path.mkdir(parents=True, exist_ok=True)
    source = projects_dir / repo.split("/")[-1] if repo else None
    if source is not None and (source / ".git").exists():
        _git(["clone", "--quiet", "--local", "--", str(source), str(path)], cwd=path.parent)
    else:
        _git(["init", "--quiet"], cwd=path)
    return path
