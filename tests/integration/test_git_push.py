"""push_branch and ensure_remote on real git, with local bare repositories standing in for GitHub."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from pathlib import Path

import pytest

from orchestrator.forge import (
    ForgeInputError,
    GitError,
    PushRejected,
    Unauthorized,
    ensure_remote,
    push_branch,
)
from tests.support.fake_github import FakeGitHub

TOKEN = "ghp_PushToken0123456789abcdefABCDEF0123"
BRANCH = "task/42-fix-login"


def git(*args: str, cwd: Path) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def commit(work: Path, name: str, text: str) -> str:
    (work / name).write_text(text)
    git("add", name, cwd=work)
    git("commit", "-q", "-m", f"change {name}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(path), cwd=tmp_path)
    return path


@pytest.fixture
def work(tmp_path: Path, bare: Path) -> Path:
    path = tmp_path / "work"
    git("clone", "-q", str(bare), str(path), cwd=tmp_path)
    git("checkout", "-q", "-b", "main", cwd=path)
    commit(path, "README.md", "hello\n")
    git("push", "-q", "origin", "main", cwd=path)
    git("checkout", "-q", "-b", BRANCH, cwd=path)
    commit(path, "fix.txt", "fixed\n")
    return path


def secrets_of(text: str) -> list[str]:
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    return [s for s in (TOKEN, basic) if s in text]


@pytest.mark.parametrize("url_form", ["path", "file"])
def test_push_branch_reaches_the_bare_repository(work: Path, bare: Path, url_form: str) -> None:
    remote = str(bare) if url_form == "path" else bare.as_uri()
    result = push_branch(work, BRANCH, remote, TOKEN)
    assert result.sha == git("rev-parse", BRANCH, cwd=work)
    assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=bare) == result.sha
    assert result.branch == BRANCH
    assert "[new branch]" in result.output
    for text in (repr(result), result.model_dump_json()):
        assert secrets_of(text) == []
    for config in (work / ".git" / "config", bare / "config"):
        assert secrets_of(config.read_text()) == []


def test_a_second_push_updates_the_branch(work: Path, bare: Path) -> None:
    push_branch(work, BRANCH, str(bare), TOKEN)
    sha = commit(work, "more.txt", "more\n")
    assert push_branch(work, BRANCH, str(bare), TOKEN).sha == sha
    assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=bare) == sha


def test_inherited_git_variables_do_not_redirect_the_push(
    work: Path, bare: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere.git"
    git("init", "-q", "--bare", str(elsewhere), cwd=tmp_path)
    monkeypatch.setenv("GIT_DIR", str(elsewhere))
    monkeypatch.setenv("GIT_TRACE", "1")
    result = push_branch(work, BRANCH, str(bare), TOKEN)
    assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=bare) == result.sha


def test_the_token_travels_in_the_environment_as_a_header_for_that_host_only(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "git-calls.log"
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    real_git = subprocess.run(["which", "git"], capture_output=True, text=True, check=True).stdout.strip()
    wrapper = wrapper_dir / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf "argv:%s\\n" "$*" >> "{log}"\n'
        f'env | grep "^GIT_CONFIG" >> "{log}"\n'
        f'exec "{real_git}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}")

    with FakeGitHub() as fake:
        origin = fake.origin
        remote = f"{origin}/acme/widgets.git"
        with pytest.raises(Unauthorized) as caught:
            push_branch(work, BRANCH, remote, TOKEN)
        sent = [r.headers.get("authorization", "") for r in fake.requests]

    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert f"Basic {basic}" in sent
    assert secrets_of(str(caught.value)) == []
    calls = log.read_text()
    argv_lines = [line for line in calls.splitlines() if line.startswith("argv:")]
    assert any(" push " in line for line in argv_lines)
    assert all(secrets_of(line) == [] for line in argv_lines)
    assert f"GIT_CONFIG_KEY_1=http.{origin}/.extraheader" in calls
    assert secrets_of((work / ".git" / "config").read_text()) == []


def test_a_failing_push_has_its_error_redacted(work: Path, tmp_path: Path) -> None:
    remote = (tmp_path / "missing" / TOKEN / "repo.git").as_uri()
    with pytest.raises(GitError) as caught:
        push_branch(work, BRANCH, remote, TOKEN)
    message = str(caught.value)
    assert "[REDACTED]" in message
    assert "does not appear to be a git repository" in message
    assert secrets_of(message) == []


def test_a_non_fast_forward_push_is_rejected(work: Path, bare: Path, tmp_path: Path) -> None:
    push_branch(work, BRANCH, str(bare), TOKEN)
    other = tmp_path / "other"
    git("clone", "-q", "-b", BRANCH, str(bare), str(other), cwd=tmp_path)
    commit(other, "theirs.txt", "theirs\n")
    git("push", "-q", "origin", BRANCH, cwd=other)
    commit(work, "ours.txt", "ours\n")
    with pytest.raises(PushRejected) as caught:
        push_branch(work, BRANCH, str(bare), TOKEN)
    assert caught.value.status == 409
    assert secrets_of(str(caught.value)) == []


def test_a_url_with_credentials_is_refused(work: Path) -> None:
    with pytest.raises(ForgeInputError) as caught:
        push_branch(work, BRANCH, f"https://x-access-token:{TOKEN}@github.com/acme/w.git", TOKEN)
    assert caught.value.field == "remote_url"
    assert secrets_of(str(caught.value)) == []


@pytest.mark.parametrize("branch", ["-f", "--upload-pack=touch /tmp/x", "../main", "a..b", "/abs", "a b", ""])
def test_bad_branch_names_are_refused(work: Path, bare: Path, branch: str) -> None:
    with pytest.raises(ForgeInputError) as caught:
        push_branch(work, branch, str(bare), TOKEN)
    assert caught.value.field == "branch"


@pytest.mark.parametrize("url", ["--upload-pack=x", "ext::sh -c touch% /tmp/x", "relative/path", "ftp://h/x"])
def test_remote_urls_git_could_misread_are_refused(work: Path, url: str) -> None:
    with pytest.raises(ForgeInputError):
        push_branch(work, BRANCH, url, TOKEN)


def test_a_branch_missing_from_the_workspace_is_a_input_error(work: Path, bare: Path) -> None:
    with pytest.raises(ForgeInputError, match="no branch 'task/nope'"):
        push_branch(work, "task/nope", str(bare), TOKEN)


def test_ensure_remote_adds_keeps_and_replaces_the_plain_url(work: Path) -> None:
    git("remote", "remove", "origin", cwd=work)
    url = "https://github.com/acme/widgets.git"
    assert ensure_remote(work, url).action == "added"
    assert ensure_remote(work, url).action == "unchanged"
    git(
        "remote", "set-url", "origin", f"https://x-access-token:{TOKEN}@github.com/acme/widgets.git", cwd=work
    )
    result = ensure_remote(work, url)
    assert result.action == "updated"
    assert git("remote", "get-url", "origin", cwd=work) == url
    assert secrets_of((work / ".git" / "config").read_text()) == []


def test_ensure_remote_refuses_credentials_and_non_repositories(work: Path, tmp_path: Path) -> None:
    with pytest.raises(ForgeInputError) as caught:
        ensure_remote(work, f"https://x-access-token:{TOKEN}@github.com/acme/w.git")
    assert secrets_of(str(caught.value)) == []
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ForgeInputError, match="not the top of a git repository"):
        ensure_remote(plain, "https://github.com/acme/w.git")
