"""A task branch's diff against its base, read from the service's mirror with the mirror's hardened git:
no external diff driver, no textconv, no colour, no renames, binary files named but not shown; every git
command bounded in the bytes read of it and in time. Only commit ids reach the command line (the branch
and the base are resolved to commits first), and paths only as literal pathspecs after `--`."""

from __future__ import annotations

import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from orchestrator.domain import diff_pages as dp
from orchestrator.forge.errors import ForgeUnavailable, GitError

STATS_CAP = 2 * 1024 * 1024
PAGE_CAP = 1024 * 1024
TIMEOUT = 20.0
_DIFF = ["diff", "--no-ext-diff", "--no-textconv", "--no-color", "--no-renames", "--no-relative"]
_PREFIXES = ["--src-prefix=a/", "--dst-prefix=b/"]


@dataclass(frozen=True)
class Output:
    data: bytes
    complete: bool


def bounded_git(repo: Path, args: list[str], env: dict[str, str], *, cap: int, timeout: float) -> Output:
    """git's stdout up to `cap` bytes (then it is stopped); GitError when it fails, ForgeUnavailable
    when it runs past `timeout` seconds."""
    with (
        tempfile.TemporaryFile() as stderr,
        subprocess.Popen(
            ["git", "-C", str(repo), *args],
            env={**env, "GIT_LITERAL_PATHSPECS": "1", "GIT_PAGER": "cat"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        ) as proc,
    ):
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            data = proc.stdout.read(cap + 1)
            complete = len(data) <= cap
            if not complete:
                proc.kill()
            code = proc.wait()
        finally:
            timer.cancel()
        stderr.seek(0)
        error = stderr.read(4096)
    if complete and code != 0:
        if code < 0:
            raise ForgeUnavailable(f"git {args[0]} in the mirror took longer than {timeout:g} s")
        raise GitError(f"git {args[0]} in the mirror failed: {error.decode(errors='replace').strip()[-500:]}")
    return Output(data[:cap], complete)


def file_stats(repo: Path, base: str, head: str, env: dict[str, str]) -> tuple[list[dp.FileStat], bool]:
    """The files `head` changed since its merge base with `base`; whether that is all of them."""
    out = bounded_git(
        repo, [*_DIFF, "--numstat", "-z", f"{base}...{head}", "--"], env, cap=STATS_CAP, timeout=TIMEOUT
    )
    return dp.parse_numstat(out.data, complete=out.complete), out.complete


def patches(
    repo: Path, base: str, head: str, paths: list[str], env: dict[str, str]
) -> tuple[list[str], bool]:
    """The unified diff of each of `paths` (in git's order); whether git's output was read whole."""
    if not paths:
        return [], True
    out = bounded_git(
        repo,
        [*_DIFF, *_PREFIXES, "--unified=3", f"{base}...{head}", "--", *paths],
        env,
        cap=PAGE_CAP,
        timeout=TIMEOUT,
    )
    return dp.split_patch(out.data.decode(errors="replace")), out.complete
