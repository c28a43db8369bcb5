"""git as a subprocess with argument lists: push a branch with a token that only the environment sees."""

from __future__ import annotations

import base64
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.domain.redact import Redactor
from orchestrator.forge.errors import (
    ForgeInputError,
    ForgeUnavailable,
    GitError,
    PushRejected,
    Unauthorized,
)
from orchestrator.forge.models import PushResult, RemoteResult
from orchestrator.forge.names import check_branch

_REMOTE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_URL_SCHEMES = ("https", "http", "file", "ssh")
_REJECTED = ("[rejected]", "[remote rejected]", "non-fast-forward", "fetch first")
_DENIED = ("authentication failed", "could not read username", "permission to", "error: 403", "error: 401")
_UNREACHABLE = ("could not resolve host", "failed to connect", "connection refused", "timed out")


def check_remote_url(url: str, field: str = "remote_url") -> str:
    parts = urlsplit(url)
    if url.startswith("-") or "\x00" in url or any(c.isspace() for c in url):
        raise ForgeInputError(field, "not a URL or path git can push to")
    if parts.username is not None or parts.password is not None:
        raise ForgeInputError(field, "must not carry credentials")
    if parts.scheme not in _URL_SCHEMES and not url.startswith("/"):
        raise ForgeInputError(field, f"scheme must be one of {', '.join(_URL_SCHEMES)} or an absolute path")
    return url


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def auth_config(remote_url: str, token: str | None) -> dict[str, str]:
    """Config entries that git reads from the environment: no stored helper, the token as a header."""
    entries = {"credential.helper": ""}
    parts = urlsplit(remote_url)
    if token and parts.scheme in ("https", "http"):
        entries[f"http.{parts.scheme}://{parts.netloc}/.extraheader"] = (
            f"Authorization: Basic {_basic(token)}"
        )
    return entries


def git_env(config: dict[str, str] | None = None) -> dict[str, str]:
    """The service's environment without inherited GIT_* variables, plus `config` as GIT_CONFIG_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "SSH_ASKPASS"}
    env["GIT_TERMINAL_PROMPT"] = "0"
    items = list((config or {}).items())
    env["GIT_CONFIG_COUNT"] = str(len(items))
    for i, (key, value) in enumerate(items):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def run_git(
    args: list[str], *, env: dict[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ForgeUnavailable(f"git {' '.join(args[2:4])} timed out after {timeout:g} s") from None
    except FileNotFoundError:
        raise GitError("git is not installed on the service's PATH") from None


def _tail(text: str, limit: int = 1500) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _push_failure(branch: str, output: str) -> Exception:
    lowered = output.lower()
    if any(mark in lowered for mark in _REJECTED):
        return PushRejected(f"the remote rejected the push of {branch!r}: {_tail(output)}")
    if any(mark in lowered for mark in _DENIED):
        return Unauthorized(f"the remote refused the credentials for pushing {branch!r}: {_tail(output)}")
    if any(mark in lowered for mark in _UNREACHABLE):
        return ForgeUnavailable(f"the remote is unreachable: {_tail(output)}")
    return GitError(f"git push of {branch!r} failed: {_tail(output)}")


def check_repository(repo_path: Path) -> Path:
    """`repo_path` must be the top of a work tree, not a folder that happens to sit inside one."""
    proc = run_git(["-C", str(repo_path), "rev-parse", "--show-toplevel"], env=git_env())
    if proc.returncode != 0 or Path(proc.stdout.strip()).resolve() != repo_path.resolve():
        raise ForgeInputError("path", f"{repo_path} is not the top of a git repository")
    return repo_path


def branch_sha(repo_path: Path, branch: str) -> str:
    proc = run_git(
        ["-C", str(repo_path), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
        env=git_env(),
    )
    if proc.returncode != 0:
        raise ForgeInputError("branch", f"no branch {branch!r} in the workspace")
    return proc.stdout.strip()


def push_branch(
    repo_path: Path,
    branch: str,
    remote_url: str,
    token: str | None,
    *,
    timeout: float = 300.0,
) -> PushResult:
    """Pushes `branch` to the same name at `remote_url`; the token travels only in git's environment."""
    check_branch(branch)
    check_remote_url(remote_url)
    config = auth_config(remote_url, token)
    redact = Redactor([token, _basic(token)] if token else [])
    sha = branch_sha(check_repository(repo_path), branch)
    refspec = f"refs/heads/{branch}:refs/heads/{branch}"
    proc = run_git(
        ["-C", str(repo_path), "push", "--porcelain", "--", remote_url, refspec],
        env=git_env(config),
        timeout=timeout,
    )
    output = redact(f"{proc.stdout}\n{proc.stderr}".strip())
    if proc.returncode != 0:
        raise _push_failure(branch, output)
    return PushResult(branch=branch, remote_url=redact(remote_url), sha=sha, output=_tail(output, 4000))


def ensure_remote(repo_path: Path, url: str, *, remote: str = "origin") -> RemoteResult:
    """Points `remote` of the repository at `url` (a plain URL, never one with a token)."""
    check_remote_url(url, "url")
    if not _REMOTE_NAME.fullmatch(remote):
        raise ForgeInputError("remote", f"{remote[:100]!r} is not a remote name")
    redact = Redactor()
    env = git_env()
    base = ["-C", str(check_repository(repo_path))]
    current = run_git([*base, "remote", "get-url", remote], env=env)
    if current.returncode == 0 and current.stdout.strip() == url:
        return RemoteResult(path=str(repo_path), remote=remote, url=url, action="unchanged")
    verb, action = ("set-url", "updated") if current.returncode == 0 else ("add", "added")
    proc = run_git([*base, "remote", verb, "--", remote, url], env=env)
    if proc.returncode != 0:
        raise GitError(f"git remote {verb} failed: {_tail(redact(proc.stderr))}")
    return RemoteResult(path=str(repo_path), remote=remote, url=url, action=action)
