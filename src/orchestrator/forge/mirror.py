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

from orchestrator.domain.redact import Redactor
from orchestrator.forge.errors import ForgeInputError, GitError, UnknownRepository
from orchestrator.forge.git import auth_config, basic_credentials, git_env, push_branch, rev_parse, run_git
from orchestrator.forge.models import PushResult
from orchestrator.forge.names import RepoRef, check_branch
from orchestrator.forge.untrusted_repo import branch_tip, link_objects

_FILE_FETCH = {"protocol.file.allow": "always"}
_HTTP_FETCH = {"protocol.https.allow": "always", "protocol.http.allow": "always"}
# every fetch of the mirror or from it: no tags (an upstream's never enter), no FETCH_HEAD written
_FETCH = ("fetch", "--quiet", "--no-tags", "--no-write-fetch-head")
# The upstream's branches live beside the task branches the service takes from agents, never over them.
UPSTREAM = "refs/remotes/origin"
_NOT_FOUND = ("not found", "does not appear to be a git repository", "could not read username", "error: 404")
_REGULAR_BLOB = ("100644", "100755")


class Mirrors:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

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

    def _repo_lock(self, ref: RepoRef) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(ref.full_name, threading.Lock())

    def sync(self, ref: RepoRef, url: str, token: str | None, *, timeout: float = 600.0) -> Path:
        """Fetches the upstream's branches (and which one is its default) into the mirror, the token only
        in git's environment for this one command; a repository the upstream does not have is
        `UnknownRepository`, and leaves no mirror behind."""
        with self._repo_lock(ref):
            fresh = not (self.path(ref) / "HEAD").is_file()
            mirror = self.ensure(ref)
            try:
                self._fetch_upstream(ref, mirror, url, token, timeout)
            except Exception:
                if fresh:
                    shutil.rmtree(mirror, ignore_errors=True)
                raise
        return mirror

    def probe(self, ref: RepoRef, url: str, token: str | None, *, timeout: float = 30.0) -> str | None:
        """Whether the upstream has the repository (`UnknownRepository` if not); its default branch."""
        return _default_branch(self._ls_remote(ref, self.root, url, token, timeout))

    def _ls_remote(self, ref: RepoRef, cwd: Path, url: str, token: str | None, timeout: float) -> str:
        redact = Redactor([token, basic_credentials(token)] if token else [])
        env = self._env({**auth_config(url, token), **_HTTP_FETCH})
        cwd.mkdir(parents=True, exist_ok=True, mode=0o700)
        listed = run_git(
            ["-C", str(cwd), "ls-remote", "--symref", "--", url, "HEAD"], env=env, timeout=timeout
        )
        if listed.returncode != 0:
            output = redact(listed.stderr.strip())
            if any(mark in output.lower() for mark in _NOT_FOUND):
                raise UnknownRepository(ref.full_name, redact(url), output[-500:])
            raise GitError(f"git ls-remote of {ref.full_name} failed: {output[-1500:]}")
        return listed.stdout

    def _fetch_upstream(
        self, ref: RepoRef, mirror: Path, url: str, token: str | None, timeout: float
    ) -> None:
        config = {**auth_config(url, token), **_HTTP_FETCH}
        redact = Redactor([token, basic_credentials(token)] if token else [])
        env = self._env(config)
        listed = self._ls_remote(ref, mirror, url, token, timeout)
        fetched = run_git(
            [
                "-C",
                str(mirror),
                *_FETCH,
                "--prune",
                "--",
                url,
                f"+refs/heads/*:{UPSTREAM}/*",
            ],
            env=env,
            timeout=timeout,
        )
        if fetched.returncode != 0:
            raise GitError(f"git fetch of {ref.full_name} failed: {redact(fetched.stderr.strip())[-1500:]}")
        default = _default_branch(listed)
        if default is not None and rev_parse(mirror, f"{UPSTREAM}/{default}") is not None:
            self._git(mirror, "symbolic-ref", f"{UPSTREAM}/HEAD", f"{UPSTREAM}/{default}")

    def checkout(self, ref: RepoRef, dest: Path, origin_url: str) -> str | None:
        """A fresh repository at `dest` with the mirror's copy of the upstream's branches as `origin/*`
        (objects copied, not shared: nothing of it points back into the mirror, whose config and
        credentials it does not carry); `origin_url` as its origin. The upstream's default branch, if any."""
        mirror = self.path(ref)
        with self._repo_lock(ref):
            env = self._env(_FILE_FETCH)
            for args in (
                ["init", "--quiet", str(dest)],
                ["-C", str(dest), "remote", "add", "origin", origin_url],
                [
                    "-C",
                    str(dest),
                    *_FETCH,
                    "--",
                    str(mirror),
                    f"+{UPSTREAM}/*:refs/remotes/origin/*",
                ],
            ):
                proc = run_git(args, env=env, timeout=600.0)
                if proc.returncode != 0:
                    raise GitError(
                        f"git {args[0] if args[0] != '-C' else args[2]} for a checkout failed: "
                        f"{proc.stderr.strip()[-1500:]}"
                    )
            head = run_git(
                ["-C", str(mirror), "symbolic-ref", "--quiet", "--short", f"{UPSTREAM}/HEAD"], env=env
            )
        name = head.stdout.strip()
        return name.removeprefix("origin/") if head.returncode == 0 and name.startswith("origin/") else None

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
                *_FETCH,
                "--",
                str(scratch),
                f"+refs/heads/{branch}:refs/heads/{branch}",
                config=_FILE_FETCH,
            )
        finally:
            shutil.rmtree(scratch.parent, ignore_errors=True)
        return sha

    def bundle(self, ref: RepoRef, branch: str, dest: Path) -> str:
        """A git bundle at `dest` (a path of the service's) of the upstream's `branch` as the mirror last
        fetched it, under its own name `refs/heads/<branch>`; the commit it holds. Made in a scratch
        repository that borrows the mirror's objects for this one command (the mirror's refs, config and
        task branches stay out of it)."""
        check_branch(branch, "base")
        mirror = self.path(ref)
        scratch_root = self.root / ".tmp"
        scratch_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._repo_lock(ref):
            sha = rev_parse(mirror, f"{UPSTREAM}/{branch}") if (mirror / "HEAD").is_file() else None
            if sha is None:
                raise ForgeInputError("base", f"the upstream of {ref.full_name} has no branch {branch!r}")
            scratch = Path(tempfile.mkdtemp(dir=scratch_root)) / "base.git"
            try:
                self._git(scratch.parent, "init", "--quiet", "--bare", str(scratch))
                (scratch / "objects" / "info" / "alternates").write_text(f"{mirror / 'objects'}\n")
                self._git(scratch, "update-ref", f"refs/heads/{branch}", sha)
                self._git(scratch, "bundle", "create", "--quiet", str(dest), f"refs/heads/{branch}")
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

    def follow(self, ref: RepoRef, branch: str, url: str, token: str | None) -> str:
        """Someone else pushed `branch` upstream: it is fetched into the mirror (hardened git, objects
        checked, the token only in git's environment) and the mirror's task branch set to its tip, from
        which the service then reads, pushes and makes checkouts; that commit counts as the branch's as the
        service knows it on GitHub (`pushed`). The tip."""
        check_branch(branch)
        redact = Redactor([token, basic_credentials(token)] if token else [])
        with self._repo_lock(ref):
            mirror = self.ensure(ref)
            fetched = run_git(
                [
                    "-C",
                    str(mirror),
                    *_FETCH,
                    "--",
                    url,
                    f"+refs/heads/{branch}:{UPSTREAM}/{branch}",
                ],
                env=self._env({**auth_config(url, token), **_HTTP_FETCH}),
                timeout=600.0,
            )
            if fetched.returncode != 0:
                raise GitError(f"git fetch of {branch!r} failed: {redact(fetched.stderr.strip())[-1500:]}")
            tip = rev_parse(mirror, f"{UPSTREAM}/{branch}")
            if tip is None:
                raise GitError(f"the upstream's {branch!r} is no commit")
            self._git(mirror, "update-ref", f"refs/heads/{branch}", tip)
            self._git(mirror, "update-ref", f"refs/pushed/{branch}", tip)
        return tip

    def onto_checkout(self, ref: RepoRef, dest: Path, branch: str) -> str:
        """In a checkout the service has just made (no agent has run in it yet), `branch` as the mirror
        holds it: fetched with hardened git as `origin/<branch>`, then checked out. Its commit."""
        check_branch(branch)
        mirror = self.path(ref)
        with self._repo_lock(ref):
            fetched = run_git(
                [
                    "-C",
                    str(dest),
                    *_FETCH,
                    "--",
                    str(mirror),
                    f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
                ],
                env=self._env(_FILE_FETCH),
            )
        if fetched.returncode != 0:
            raise GitError(
                f"git fetch of {branch!r} into a checkout failed: {fetched.stderr.strip()[-1500:]}"
            )
        moved = run_git(
            ["-C", str(dest), "checkout", "--quiet", "-B", branch, f"refs/remotes/origin/{branch}"],
            env=self._env(),
        )
        if moved.returncode != 0:
            raise GitError(f"git checkout of {branch!r} failed: {moved.stderr.strip()[-1500:]}")
        sha = rev_parse(dest, "HEAD")
        if sha is None:
            raise GitError(f"the checkout has no commit on {branch!r}")
        return sha

    def pushed(self, ref: RepoRef, branch: str, sha: str) -> bool:
        """Whether commit `sha` is part of what the service pushed of `branch` (or of a head it followed)."""
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
        data = read_blob_at(self.path(ref), commit, name, cap, self._env())
        return None if data is None else data.decode(errors="replace")

    def read_default_file(self, ref: RepoRef, name: str, cap: int) -> bytes | None:
        """The first `cap` bytes of `name` on the upstream's default branch as the mirror last fetched
        it, if it is a regular file there."""
        mirror = self.path(ref)
        commit = rev_parse(mirror, f"{UPSTREAM}/HEAD") if (mirror / "HEAD").is_file() else None
        return None if commit is None else read_blob_at(mirror, commit, name, cap, self._env())


def _default_branch(ls_remote: str) -> str | None:
    """The branch `ref: refs/heads/<name>\tHEAD` of `git ls-remote --symref` names, if well formed."""
    for line in ls_remote.splitlines():
        target, _, name = line.partition("\t")
        if name == "HEAD" and target.startswith("ref: refs/heads/"):
            branch = target.removeprefix("ref: refs/heads/")
            try:
                return check_branch(branch)
            except ForgeInputError:
                return None
    return None


def read_blob_at(repo: Path, commit: str, name: str, cap: int, env: dict[str, str]) -> bytes | None:
    """The first `cap` bytes of `name` in `commit` of `repo` (read as data: ls-tree and cat-file, no
    checkout), if it is a regular file there."""
    listed = run_git(["-C", str(repo), "ls-tree", "-z", commit, "--", name], env=env)
    entry = listed.stdout.split("\0")[0] if listed.returncode == 0 else ""
    meta, _, path = entry.partition("\t")
    fields = meta.split()
    if path != name or len(fields) != 3 or fields[0] not in _REGULAR_BLOB or fields[1] != "blob":
        return None
    with subprocess.Popen(
        ["git", "-C", str(repo), "cat-file", "blob", fields[2]],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as proc:
        assert proc.stdout is not None
        data = proc.stdout.read(cap)
        proc.kill()
    return data
