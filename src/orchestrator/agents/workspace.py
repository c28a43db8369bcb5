"""Working directories: a checkout of each repository of a task on its branch, or a fresh repository."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orchestrator.agents.blanks import Blanks
from orchestrator.forge.errors import ForgeError
from orchestrator.forge.git import git_env

REPO_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99})?$")
_SLUG = re.compile(r"[^a-z0-9]+")


class WorkspaceError(Exception):
    pass


class RepoSource(Protocol):
    """Where a repository not under PROJECTS_DIR comes from (forge/sources.py ForgeRepos)."""

    def checkout(self, repo: str, dest: Path) -> str | None: ...


def valid_repo_name(name: str) -> bool:
    return REPO_NAME.match(name) is not None and ".." not in name and not name.endswith(".")


def task_branch(task_id: str, title: str) -> str:
    slug = _SLUG.sub("-", title.lower()).strip("-")[:40].strip("-") or "work"
    safe_id = _SLUG.sub("-", task_id.lower()).strip("-") or "task"
    return f"task/{safe_id}-{slug}"


def _env() -> dict[str, str]:
    """For a fresh checkout from the operator's project and its upstream (nothing an agent wrote): the
    operator's git configuration (credentials for the upstream) and SSH agent, without hooks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_COUNT="2")
    env.update(GIT_CONFIG_KEY_0="core.hooksPath", GIT_CONFIG_VALUE_0="/dev/null")
    env.update(GIT_CONFIG_KEY_1="core.fsmonitor", GIT_CONFIG_VALUE_1="false")
    return env


def _forge_env() -> dict[str, str]:
    """For a checkout made from the forge's mirror: the upstream is anyone's repository, so none of the
    operator's git configuration (a filter driver such as git-lfs's, which its .gitattributes and
    .lfsconfig would set to work) and none of the service's environment."""
    return git_env()


def _git(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise WorkspaceError(f"git {args[0]} failed: {proc.stderr.strip()[:500]}")
    return proc.stdout.strip()


def _is_repository(path: Path) -> bool:
    return (path / ".git").exists() or (path / "HEAD").is_file()


def _origin_owner(project: Path) -> str | None:
    """The owner the operator's project's `origin` URL names (`https://host/<owner>/<name>.git`,
    `git@host:<owner>/<name>.git`); None for a local path or anything else."""
    proc = subprocess.run(
        ["git", "-C", str(project), "config", "--get", "remote.origin.url"],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    url = proc.stdout.strip()
    if "://" in url:
        path = url.split("://", 1)[1].partition("/")[2]
    elif _SCP_LIKE.match(url):
        path = url.split(":", 1)[1]
    else:
        return None
    parts = [p for p in path.split("/") if p]
    return parts[-2] if len(parts) >= 2 else None


_SCP_LIKE = re.compile(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:[^/]")


def project_of(projects_dir: Path, repo: str) -> Path | None:
    """The operator's clone of `repo` under `projects_dir`: `<owner>/<name>` for `owner/name`, else
    `<name>`, which for `owner/name` must not be another owner's (by its origin URL): `a/calc` and `b/calc`
    never share one."""
    owner, _, name = repo.rpartition("/")
    if owner and _is_repository(nested := projects_dir / owner / name):
        return nested
    flat = projects_dir / name
    if not _is_repository(flat):
        return None
    named = _origin_owner(flat) if owner else None
    return flat if named is None or named.lower() == owner.lower() else None


def _project(projects_dir: Path, repo: str) -> Path | None:
    return project_of(projects_dir, repo)


def in_projects(projects_dir: Path, repo: str) -> bool:
    return _project(projects_dir, repo) is not None


def prepare(
    path: Path,
    repo: str | None,
    projects_dir: Path,
    branch: str | None = None,
    forge: RepoSource | None = None,
    blanks: Blanks | None = None,
) -> Path:
    """Makes `path` ready for an agent; an existing workspace (a retry, a fix-up) is kept as it is. A
    repository not under `projects_dir` comes from `forge`; without one, it starts as an empty repository
    (one of `blanks`, when one is ready)."""
    if path.is_dir() and any(path.iterdir()):
        return path
    source = _project(projects_dir, repo) if repo else None
    if source is None:
        if not repo or forge is None:
            _fresh_repository(path, branch or _default_branch(), blanks)
            return path
        path.mkdir(parents=True, exist_ok=True)
        try:
            default = forge.checkout(repo, path)
        except ForgeError as exc:
            remove(path)
            raise WorkspaceError(str(exc)) from None
        _start_branch(path, branch or default, default)
        return path
    path.mkdir(parents=True, exist_ok=True)
    _git(["clone", "--quiet", "--no-hardlinks", "--", str(source), str(path)], cwd=path.parent)
    upstream = subprocess.run(
        ["git", "-C", str(source), "remote", "get-url", "origin"],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if upstream.returncode == 0 and upstream.stdout.strip():
        _git(["remote", "set-url", "origin", upstream.stdout.strip()], cwd=path)
        _git(["fetch", "--quiet", "origin"], cwd=path)
    if branch:
        remote_has = (
            subprocess.run(
                ["git", "rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{branch}"],
                cwd=path,
                env=_env(),
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )
        start = [f"origin/{branch}"] if remote_has else []
        _git(["checkout", "--quiet", "-B", branch, *start], cwd=path)
    return path


_CONFIG = (
    "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n"
)


def _fresh_repository(path: Path, branch: str, blanks: Blanks | None) -> None:
    """An empty repository on an unborn branch, as `git init` and `git checkout -B <branch>` would leave
    it, written directly: no git process on an agent's start path."""
    if blanks is not None and blanks.take(path):
        if branch != _default_branch():  # a blank's HEAD names the default branch
            _head(path, branch)
        return
    path.mkdir(parents=True, exist_ok=True)
    fresh_layout(path, branch)


def fresh_layout(path: Path, branch: str | None = None) -> None:
    """In the empty directory `path`: only what git needs to know it as a repository (objects/, refs/,
    a config, HEAD on `branch` or the default one) and objects/info, where git looks for alternates as
    `git init` leaves it. git makes the rest (refs/heads, objects/pack, info) when it first writes there."""
    git_dir = path / ".git"
    for sub in ("", "objects", "objects/info", "refs"):
        (git_dir / sub).mkdir()
    (git_dir / "config").write_text(_CONFIG)
    _head(path, branch or _default_branch())


def _head(path: Path, branch: str) -> None:
    (path / ".git" / "HEAD").write_text(f"ref: refs/heads/{branch}\n")


@functools.cache
def _default_branch() -> str:
    """The branch `git init` would start on, by the operator's git configuration (asked once)."""
    proc = subprocess.run(
        ["git", "config", "--get", "init.defaultBranch"],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return proc.stdout.strip() or "master"


def _start_branch(path: Path, branch: str | None, default: str | None) -> None:
    """In a checkout made from the mirror: `branch` from the upstream's branch of that name, else from its
    default branch; on an empty upstream, an unborn `branch`."""
    if branch is None:
        return
    for start in (branch, default):
        if start and _has(path, f"refs/remotes/origin/{start}"):
            _git(["checkout", "--quiet", "-B", branch, f"origin/{start}"], cwd=path, env=_forge_env())
            return
    _git(["symbolic-ref", "HEAD", f"refs/heads/{branch}"], cwd=path, env=_forge_env())


def _has(path: Path, ref: str) -> bool:
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", ref],
        cwd=path,
        env=_forge_env(),
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


@dataclass(frozen=True)
class TaskCheckouts:
    primary: Path
    others: list[Path]
    branch: str
    created: bool = False  # the primary checkout was made now (not kept from an earlier step)


def prepare_task(
    workspaces_dir: Path,
    projects_dir: Path,
    task_id: str,
    title: str,
    repos: list[str],
    forge: RepoSource | None = None,
    blanks: Blanks | None = None,
) -> TaskCheckouts:
    """One checkout per repository of the task, all on the task's branch."""
    branch = task_branch(task_id, title)
    root = task_root(workspaces_dir, task_id)
    names = repos or ["work"]
    dirs = checkout_names(repos) if repos else {"work": "work"}
    primary = root / dirs[names[0]]
    created = not (primary.is_dir() and any(primary.iterdir()))
    paths = [
        prepare(root / dirs[name], name if repos else None, projects_dir, branch, forge, blanks)
        for name in names
    ]
    return TaskCheckouts(paths[0], paths[1:], branch, created)


def checkout_names(repos: list[str]) -> dict[str, str]:
    """The directory of each repository's checkout under the task's root: its name; where repositories of
    the task share a name (`a/calc`, `b/calc`, compared without case as some file systems do), those with
    an owner get `<owner>@<name>` (no owner or repository name holds an '@')."""
    short = [r.rpartition("/")[2] for r in repos]
    counts: dict[str, int] = {}
    for name in short:
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    out: dict[str, str] = {}
    for repo, name in zip(repos, short, strict=True):
        owner = repo.rpartition("/")[0]
        out[repo] = f"{owner}@{name}" if owner and counts[name.lower()] > 1 else name
    return out


def checkout_dir(root: Path, repo: str, repos: list[str] | None = None) -> Path:
    """Where a task's checkout of `repo` (one of its `repos`) lives under its root."""
    return root / checkout_names(repos or [repo]).get(repo, repo.rpartition("/")[2])


def task_root(workspaces_dir: Path, task_id: str) -> Path:
    return workspaces_dir / "tasks" / re.sub(r"[^A-Za-z0-9_.-]", "_", task_id)


def checkouts_of(root: Path) -> list[Path]:
    """The checkout directories of a task (links an agent may have put there are not followed; a name
    starting with "." is no repository's but the service's, such as a conflict fix-up's bundle)."""
    if root.is_symlink() or not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    )


def remove(path: Path) -> None:
    """A plain recursive delete: no git runs in a workspace, and links inside it are removed, not followed."""
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
