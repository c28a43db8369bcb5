"""Real git repositories for tests: a bare repository stands in for the GitHub remote."""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
}


def git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout.strip()


def remote_with_project(root: Path, name: str) -> tuple[Path, Path]:
    """A bare `remote/<name>.git` with one commit on main, and `projects/<name>` cloned from it."""
    bare = root / "remote" / f"{name}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = root / "seed" / name
    git("clone", "--quiet", str(bare), str(seed))
    (seed / "README.md").write_text(f"# {name}\n")
    (seed / "VERIFY.md").write_text("Run `python3 -c 'import calc'`.\n")
    git("checkout", "--quiet", "-B", "main", cwd=seed)
    git("add", ".", cwd=seed)
    git("commit", "--quiet", "-m", "initial", cwd=seed)
    git("push", "--quiet", "origin", "main", cwd=seed)
    project = root / "projects" / name
    git("clone", "--quiet", str(bare), str(project))
    return bare, project
