"""The service's mirror on real git: a branch taken from a checkout an attacker prepared (remotes,
hooks, fsmonitor, includes, alternates, a `.git` file, symlinked refs) and pushed to a real git server
on loopback, which records every Authorization header; an attacker server records anything it gets."""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.api.errors import status_of
from orchestrator.domain.git_url import check_git_base_url
from orchestrator.forge import ForgeInputError, PushRejected, Unauthorized
from orchestrator.forge.mirror import Mirrors
from orchestrator.forge.publisher import Publisher
from orchestrator.settings import SettingsError, load_settings
from tests.support.git_http import AttackerServer, GitHttpServer
from tests.support.repos import git, remote_with_project

TOKEN = "ghp_PushToken0123456789abcdefABCDEF0123"
BRANCH = "task/42-fix-login"


def secrets_of(text: str) -> list[str]:
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    return [s for s in (TOKEN, basic) if s in text]


@pytest.fixture
def host(tmp_path: Path) -> Iterator[GitHttpServer]:
    bare, _ = remote_with_project(tmp_path, "widgets")
    with GitHttpServer(tmp_path / "git-host", TOKEN) as server:
        server.add_repo("acme", "widgets", source=bare)
        yield server


@pytest.fixture
def attacker() -> Iterator[AttackerServer]:
    with AttackerServer() as server:
        yield server


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "projects" / "widgets"
    git("checkout", "--quiet", "-b", BRANCH, cwd=path)
    commit(path, "fix.txt", "fixed\n")
    return path


def commit(work: Path, name: str, text: str) -> str:
    (work / name).write_text(text)
    git("add", name, cwd=work)
    git("commit", "--quiet", "-m", f"change {name}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def publisher(tmp_path: Path, host: GitHttpServer, token: str | None = TOKEN) -> Publisher:
    return Publisher(Mirrors(tmp_path / "data" / "mirrors"), host.url, "acme", token)


def hostile(work: Path, markers: Path, attacker: AttackerServer) -> list[str]:
    """Everything a hostile agent can plant in its checkout's git; returns the marker names."""
    markers.mkdir(exist_ok=True)
    names = []

    def marker(name: str) -> str:
        names.append(name)
        return f"touch {markers / name}"

    git("remote", "set-url", "origin", f"{attacker.url}/x.git", cwd=work)
    git("remote", "set-url", "--push", "origin", f"{attacker.url}/push.git", cwd=work)
    hooks = work / ".git" / "hooks"
    for hook in ("pre-push", "post-checkout", "reference-transaction", "pre-receive", "post-update"):
        (hooks / hook).write_text(f"#!/bin/sh\n{marker('hook-' + hook)}\n")
        (hooks / hook).chmod(0o755)
    other_hooks = work / "evil-hooks"
    other_hooks.mkdir()
    (other_hooks / "pre-push").write_text(f"#!/bin/sh\n{marker('hookspath')}\n")
    (other_hooks / "pre-push").chmod(0o755)
    included = work / "included.cfg"
    included.write_text(f"[core]\n\tfsmonitor = {marker('include-fsmonitor')}\n")
    config = {
        "core.fsmonitor": marker("fsmonitor"),
        "core.sshCommand": marker("ssh"),
        "credential.helper": f"!{marker('credential')}; echo",
        "core.hooksPath": str(other_hooks),
        "include.path": str(included),
        "uploadpack.packObjectsHook": marker("pack-objects-hook"),
        "core.pager": marker("pager"),
        "url.http://127.0.0.1:1/.insteadOf": "http://",
    }
    for key, value in config.items():
        git("config", key, value, cwd=work)
    (work / ".git" / "objects" / "info" / "alternates").write_text("/nonexistent/objects\n")
    return names


def test_the_branch_reaches_the_configured_url_whatever_the_checkout_says(
    tmp_path: Path, host: GitHttpServer, attacker: AttackerServer, work: Path
) -> None:
    sha = git("rev-parse", BRANCH, cwd=work)
    markers = tmp_path / "markers"
    planted = hostile(work, markers, attacker)
    pub = publisher(tmp_path, host)

    result = pub.take_and_push("widgets", work, BRANCH)

    assert result.sha == sha
    assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=host.root / "acme" / "widgets.git") == sha
    assert attacker.seen == []
    assert sorted(os.listdir(markers)) == [], f"planted: {planted}"
    pushes = [s for s in host.seen if s.path.endswith("git-receive-pack")]
    assert pushes and all(s.authorization == host.expected_authorization for s in pushes)
    assert result.remote_url == f"{host.url}/acme/widgets.git"
    assert secrets_of(result.model_dump_json()) == []
    mirror = tmp_path / "data" / "mirrors" / "acme" / "widgets.git"
    for path in mirror.rglob("*"):
        if path.is_file() and path.stat().st_size < 1 << 20:
            assert secrets_of(path.read_bytes().decode(errors="replace")) == [], path
    assert pub.pushed("widgets", BRANCH, sha)


def test_a_rewritten_branch_is_taken_again_and_a_non_fast_forward_push_is_rejected(
    tmp_path: Path, host: GitHttpServer, work: Path
) -> None:
    pub = publisher(tmp_path, host)
    pub.take_and_push("widgets", work, BRANCH)
    newer = commit(work, "more.txt", "more\n")
    assert pub.take_and_push("widgets", work, BRANCH).sha == newer
    git("reset", "--quiet", "--hard", "HEAD~2", cwd=work)
    rewritten = commit(work, "other.txt", "other\n")
    assert pub.take("widgets", work, BRANCH) == rewritten
    assert not pub.pushed("widgets", BRANCH, rewritten)
    with pytest.raises(PushRejected) as caught:
        pub.push("widgets", BRANCH)
    assert status_of(caught.value) == 409
    assert secrets_of(str(caught.value)) == []


def test_a_wrong_token_is_unauthorized_and_redacted(tmp_path: Path, host: GitHttpServer, work: Path) -> None:
    pub = publisher(tmp_path, host, token="ghp_WrongToken0123456789abcdefABCDEF01")
    with pytest.raises(Unauthorized) as caught:
        pub.take_and_push("widgets", work, BRANCH)
    assert "ghp_WrongToken" not in str(caught.value)


def test_a_gitfile_or_symlinked_git_dir_or_ref_is_not_followed(
    tmp_path: Path, host: GitHttpServer, work: Path
) -> None:
    pub = publisher(tmp_path, host)
    elsewhere = tmp_path / "elsewhere"
    git("clone", "--quiet", str(work), str(elsewhere))
    git("checkout", "--quiet", "-b", "secret-branch", cwd=elsewhere)
    secret = commit(elsewhere, "secret.txt", "secret\n")

    linked_ref = work / ".git" / "refs" / "heads" / "task" / "linked"
    linked_ref.symlink_to(elsewhere / ".git" / "refs" / "heads" / "secret-branch")
    with pytest.raises(ForgeInputError, match="no branch"):
        pub.take("widgets", work, "task/linked")

    gitfile = tmp_path / "gitfile-checkout"
    gitfile.mkdir()
    (gitfile / ".git").write_text(f"gitdir: {elsewhere / '.git'}\n")
    with pytest.raises(ForgeInputError):
        pub.take("widgets", gitfile, "secret-branch")

    symlinked = tmp_path / "symlinked-checkout"
    symlinked.mkdir()
    (symlinked / ".git").symlink_to(elsewhere / ".git")
    with pytest.raises(ForgeInputError):
        pub.take("widgets", symlinked, "secret-branch")

    (work / ".git" / "commondir").write_text(str(elsewhere / ".git") + "\n")
    (work / ".git" / "objects" / "info" / "alternates").write_text(str(elsewhere / ".git" / "objects") + "\n")
    (work / ".git" / "refs" / "heads" / "task" / "borrowed").write_text(secret + "\n")
    with pytest.raises(ForgeInputError, match="missing"):
        pub.take("widgets", work, "task/borrowed")
    assert [s for s in host.seen if s.method == "POST"] == []


def test_files_are_read_from_the_mirror_as_regular_blobs_only_and_capped(
    tmp_path: Path, host: GitHttpServer, work: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(f"token={TOKEN}\n")
    (work / "DEPLOY.md").symlink_to("/proc/self/environ")
    (work / "docs").mkdir()
    (work / "docs" / "VERIFY.md").symlink_to(secret)
    (work / "BIG.md").write_text("x" * 50_000)
    (work / "RUN.md").write_text("run make\n")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "instructions", cwd=work)
    pub = publisher(tmp_path, host)
    pub.take("widgets", work, BRANCH)

    assert pub.read_file("widgets", BRANCH, "DEPLOY.md") is None
    assert pub.read_file("widgets", BRANCH, "docs/VERIFY.md") is None
    assert pub.read_file("widgets", BRANCH, "RUN.md") == "run make\n"
    assert pub.read_file("widgets", BRANCH, "BIG.md", cap=1000) == "x" * 1000
    assert pub.read_file("widgets", BRANCH, "missing.md") is None
    assert pub.read_file("widgets", "task/none", "RUN.md") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://github.com",
        "http://10.0.0.1",
        "ftp://127.0.0.1",
        "file:///tmp/x",
        "https://user:pw@github.com",
        "https://github.com/?q=1",
        "https://",
        "ext::sh -c touch% /tmp/x",
        "-https://github.com",
    ],
)
def test_git_urls_other_than_https_or_loopback_http_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"must|not a URL"):
        check_git_base_url(url)


@pytest.mark.parametrize("url", ["https://github.com", "https://ghe.example.com/git/", "http://127.0.0.1:9"])
def test_https_and_loopback_http_git_urls_are_accepted(url: str) -> None:
    assert check_git_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize("branch", ["-f", "--upload-pack=touch /tmp/x", "../main", "a..b", "/abs", "a b", ""])
def test_bad_branch_names_are_refused(tmp_path: Path, host: GitHttpServer, work: Path, branch: str) -> None:
    with pytest.raises(ForgeInputError) as caught:
        publisher(tmp_path, host).take("widgets", work, branch)
    assert caught.value.field == "branch"


def test_a_wrong_git_url_stops_the_service_with_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_GIT_URL", "http://git.example.com")
    with pytest.raises(SettingsError, match=r"GITHUB_GIT_URL: .*https"):
        load_settings()
    monkeypatch.delenv("GITHUB_GIT_URL")
    assert load_settings().github_git_url == "https://github.com"


def test_a_checkout_on_another_file_system_is_copied_not_linked(
    tmp_path: Path, host: GitHttpServer, work: Path
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == work.stat().st_dev:
        pytest.skip("needs a second file system for the mirrors")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        (work / ".git" / "objects" / "info" / "alternates").write_text("/nonexistent\n")
        pub = Publisher(Mirrors(Path(other) / "mirrors"), host.url, "acme", TOKEN)
        sha = git("rev-parse", BRANCH, cwd=work)
        assert pub.take_and_push("widgets", work, BRANCH).sha == sha
        assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=host.root / "acme" / "widgets.git") == sha
        assert list((Path(other) / "mirrors" / ".tmp").iterdir()) == []
