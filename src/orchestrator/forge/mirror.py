"""The service's own bare mirror of each repository, under the data directory.

An agent's branch crosses into it as data only: the tip read without git, the object files linked into
a scratch repository of the service, and fetched from there with hardened git (fsck on). Pushes, the
"was it pushed" check and reads of files such as DEPLOY.md all happen in the mirror, never in a
checkout an agent wrote."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from orchestrator.forge.errors import ForgeInputError, GitError
from orchestrator.forge.git import git_env, push_branch, rev_parse, run_git
from orchestrator.forge.models import PushResult
from orchestrator.forge.names import RepoRef, check_branch
from orchestrator.forge.untrusted_repo import branch_tip, link_objects

_FILE_FETCH = {"protocol.file.allow": "always"}
_REGULAR_BLOB = ("100644", "100755")


class Mirrors:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def path(self, ref: RepoRef) -> Path:
        return self.root / ref.owner / f"{ref.name}.git"

    def _env(self, config: dict[str, str] | None = None) -> dict[str, str]:
        home = self.root / ".home"
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        return git_env(config, home=home)

    def _git(self, repo: Path, *args: str, config: dict[str, str] | None = None) -> str:
        proc = run_git(["-C", str(repo), *args], env=self._env(config))
        if proc.returncode != 0:
            raise GitError(f"git {args[0]} in the mirror failed: {proc.stderr.strip()[-1500:]}")
        return proc.stdout.strip()

    def ensure(self, ref: RepoRef) -> Path:
        path = self.path(ref)
        with self._lock:
            if not (path / "HEAD").is_file():
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._git(path, "init", "--quiet", "--bare")
        return path

    def fetch_branch(self, ref: RepoRef, checkout: Path, branch: str) -> str:
        """Takes `branch` of the checkout into the mirror (forced: an agent may rewrite its branch)."""
        check_branch(branch)
        sha = branch_tip(checkout, branch)
        if sha is None:
            raise ForgeInputError("branch", f"no branch {branch!r} in {checkout}")
        mirror = self.ensure(ref)
        scratch_root = self.root / ".tmp"
        scratch_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        scratch = Path(tempfile.mkdtemp(dir=scratch_root)) / "branch.git"
        try:
            self._git(scratch.parent, "init", "--quiet", "--bare", str(scratch))
            link_objects(checkout, scratch / "objects")
            proc = run_git(["-C", str(scratch), "update-ref", f"refs/heads/{branch}", sha], env=self._env())
            if proc.returncode != 0:
                raise ForgeInputError("branch", f"{branch!r} names a commit missing from {checkout}")
            self._git(
                mirror,
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--",
                str(scratch),
                f"+refs/heads/{branch}:refs/heads/{branch}",
                config=_FILE_FETCH,
            )
        finally:
            shutil.rmtree(scratch.parent, ignore_errors=True)
        return sha

    def tip(self, ref: RepoRef, branch: str) -> str | None:
        mirror = self.path(ref)
        return rev_parse(mirror, f"refs/heads/{branch}") if (mirror / "HEAD").is_file() else None

    def push(self, ref: RepoRef, branch: str, url: str, token: str | None) -> PushResult:
        mirror = self.path(ref)
        result = push_branch(mirror, branch, url, token)
        self._git(mirror, "update-ref", f"refs/pushed/{branch}", result.sha)
        return result

    def pushed(self, ref: RepoRef, branch: str, sha: str) -> bool:
        """Whether commit `sha` is part of what the service pushed of `branch`."""
        mirror = self.path(ref)
        if not (mirror / "HEAD").is_file():
            return False
        proc = run_git(
            ["-C", str(mirror), "merge-base", "--is-ancestor", sha, f"refs/pushed/{branch}"], env=self._env()
        )
        return proc.returncode == 0

    def read_file(self, ref: RepoRef, branch: str, name: str, cap: int) -> str | None:
        """The first `cap` bytes of `name` in the mirror's `branch`, if it is a regular file there."""
        commit = self.tip(ref, branch)
        if commit is None:
            return None
        mirror = self.path(ref)
        listed = run_git(["-C", str(mirror), "ls-tree", "-z", commit, "--", name], env=self._env())
        entry = listed.stdout.split("\0")[0] if listed.returncode == 0 else ""
        meta, _, path = entry.partition("\t")
        fields = meta.split()
        if path != name or len(fields) != 3 or fields[0] not in _REGULAR_BLOB or fields[1] != "blob":
            return None
        return self._blob_head(mirror, fields[2], cap).decode(errors="replace")

    def _blob_head(self, mirror: Path, blob: str, cap: int) -> bytes:
        with subprocess.Popen(
            ["git", "-C", str(mirror), "cat-file", "blob", blob],
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as proc:
            assert proc.stdout is not None
            data = proc.stdout.read(cap)
            proc.kill()
        return data
