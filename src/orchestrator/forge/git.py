"""git as a subprocess with argument lists, a minimal environment and no hooks or helpers: push a branch
of the service's mirror with a token that only the environment sees, for exactly one repository URL."""

from __future__ import annotations

import base64
import os
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
from orchestrator.forge.models import PushResult
from orchestrator.forge.names import check_branch

_REJECTED = ("[rejected]", "[remote rejected]", "non-fast-forward", "fetch first")
_DENIED = ("authentication failed", "could not read username", "permission to", "error: 403", "error: 401")
_UNREACHABLE = ("could not resolve host", "failed to connect", "connection refused", "timed out")


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def basic_credentials(token: str) -> str:
    return _basic(token)


def auth_config(repo_url: str, token: str | None) -> dict[str, str]:
    """The token as a header for exactly `repo_url` (and the paths beneath it), never for its host."""
    entries = {"credential.helper": "", "http.followRedirects": "false"}
    if token and urlsplit(repo_url).scheme in ("https", "http"):
        entries[f"http.{repo_url}.extraheader"] = f"Authorization: Basic {_basic(token)}"
    return entries


# What every git the service runs gets: no hooks, no fsmonitor, no helper, no protocol but those allowed.
HARDENING = {
    "core.hooksPath": "/dev/null",
    "core.fsmonitor": "false",
    "core.sshCommand": "false",
    "credential.helper": "",
    "protocol.allow": "never",
    "uploadpack.packObjectsHook": "",
    "fetch.fsckObjects": "true",
    "transfer.fsckObjects": "true",
}


def git_env(config: dict[str, str] | None = None, *, home: Path | None = None) -> dict[str, str]:
    """A minimal environment: PATH, a throw-away HOME, LANG, no system or global config, no prompts;
    `config` (over the hardening) as GIT_CONFIG_*, which git treats like `-c` options."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home or Path("/nonexistent")),
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_NO_LAZY_FETCH": "1",
        "GIT_PROTOCOL_FROM_USER": "0",
    }
    items = list({**HARDENING, **(config or {})}.items())
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


def push_branch(
    mirror: Path,
    branch: str,
    repo_url: str,
    token: str | None,
    *,
    timeout: float = 300.0,
) -> PushResult:
    """Pushes `branch` of the service's mirror to the same name at `repo_url` (checked by
    `check_push_url`); the token travels only in git's environment, as a header for that URL."""
    check_branch(branch)
    config = {**auth_config(repo_url, token), **_PUSH_PROTOCOLS}
    redact = Redactor([token, _basic(token)] if token else [])
    sha = rev_parse(mirror, f"refs/heads/{branch}")
    if sha is None:
        raise ForgeInputError("branch", f"no branch {branch!r} in the mirror")
    refspec = f"refs/heads/{branch}:refs/heads/{branch}"
    proc = run_git(
        ["-C", str(mirror), "push", "--porcelain", "--no-verify", "--", repo_url, refspec],
        env=git_env(config),
        timeout=timeout,
    )
    output = redact(f"{proc.stdout}\n{proc.stderr}".strip())
    if proc.returncode != 0:
        raise _push_failure(branch, output)
    return PushResult(branch=branch, remote_url=redact(repo_url), sha=sha, output=_tail(output, 4000))


_PUSH_PROTOCOLS = {"protocol.https.allow": "always", "protocol.http.allow": "always"}


def rev_parse(repo: Path, ref: str) -> str | None:
    proc = run_git(["-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], env=git_env())
    return proc.stdout.strip() if proc.returncode == 0 else None
