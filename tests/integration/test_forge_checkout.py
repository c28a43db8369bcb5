"""Repositories not under PROJECTS_DIR come from GITHUB_GIT_URL: real git over smart HTTP on loopback
(requiring the token), into the service's mirror, and each checkout made from the mirror on disk."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.agents import workspace
from orchestrator.forge.mirror import Mirrors
from orchestrator.forge.sources import ForgeRepos
from tests.support.git_http import GitHttpServer
from tests.support.repos import git, remote_with_project

TOKEN = "ghp_CloneToken0123456789abcdefABCDEF012"


def on_disk(root: Path) -> list[Path]:
    """Files under `root` that carry the token or its Basic form."""
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if TOKEN.encode() in data or basic.encode() in data:
                found.append(path)
    return found


@pytest.fixture
def host(tmp_path: Path) -> Iterator[GitHttpServer]:
    bare, _ = remote_with_project(tmp_path / "upstream", "widgets")
    with GitHttpServer(tmp_path / "git-host", TOKEN) as server:
        server.add_repo("acme", "widgets", source=bare)
        yield server


def forge(tmp_path: Path, host: GitHttpServer, token: str | None = TOKEN) -> ForgeRepos:
    return ForgeRepos(Mirrors(tmp_path / "data" / "mirrors"), host.url, "acme", token)


def test_a_repository_only_on_the_forge_is_checked_out_from_the_mirror(
    tmp_path: Path, host: GitHttpServer
) -> None:
    projects = tmp_path / "projects"
    projects.mkdir()
    dest = tmp_path / "ws" / "widgets"
    workspace.prepare(dest, "widgets", projects, "task/t1-fix", forge(tmp_path, host))

    assert (dest / "README.md").read_text() == "# widgets\n"
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=dest) == "task/t1-fix"
    assert git("rev-parse", "HEAD", cwd=dest) == git("rev-parse", "origin/main", cwd=dest)
    assert git("remote", "get-url", "origin", cwd=dest) == f"{host.url}/acme/widgets.git"
    assert not (dest / ".git" / "objects" / "info" / "alternates").exists()
    mirror = tmp_path / "data" / "mirrors" / "acme" / "widgets.git"
    assert str(mirror) not in (dest / ".git" / "config").read_text()
    assert on_disk(tmp_path / "ws") == []
    assert on_disk(tmp_path / "data") == []
    assert any(s.authorization for s in host.seen)


def test_each_checkout_fetches_the_upstream_first(tmp_path: Path, host: GitHttpServer) -> None:
    source = forge(tmp_path, host)
    workspace.prepare(tmp_path / "ws1" / "widgets", "acme/widgets", tmp_path, "task/a", source)
    seed = tmp_path / "upstream" / "seed" / "widgets"
    (seed / "NEW.md").write_text("new\n")
    git("add", "NEW.md", cwd=seed)
    git("commit", "--quiet", "-m", "new", cwd=seed)
    git("push", "--quiet", str(host.root / "acme" / "widgets.git"), "main", cwd=seed)

    second = workspace.prepare(tmp_path / "ws2" / "widgets", "acme/widgets", tmp_path, "task/b", source)
    assert (second / "NEW.md").read_text() == "new\n"


def test_an_unknown_repository_is_a_clear_error_not_an_empty_repository(
    tmp_path: Path, host: GitHttpServer
) -> None:
    dest = tmp_path / "ws" / "nothere"
    with pytest.raises(workspace.WorkspaceError, match="'acme/nothere'"):
        workspace.prepare(dest, "nothere", tmp_path, "task/x", forge(tmp_path, host))
    assert not dest.exists()
    assert not (tmp_path / "data" / "mirrors" / "acme" / "nothere.git").exists()


def test_a_wrong_token_is_refused_and_kept_out_of_the_message(tmp_path: Path, host: GitHttpServer) -> None:
    wrong = "ghp_WrongToken0123456789abcdefABCDEF0123"
    with pytest.raises(workspace.WorkspaceError) as caught:
        workspace.prepare(
            tmp_path / "ws" / "widgets", "widgets", tmp_path, "task/x", forge(tmp_path, host, wrong)
        )
    assert wrong not in str(caught.value)
    assert base64.b64encode(f"x-access-token:{wrong}".encode()).decode() not in str(caught.value)


def test_the_checkout_of_a_hostile_upstream_runs_no_filter_of_the_operator_git_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare, _ = remote_with_project(tmp_path / "upstream", "gadgets")
    seed = tmp_path / "upstream" / "seed" / "gadgets"
    (seed / ".gitattributes").write_text("*.txt filter=lfs\n")  # asks for the operator's git-lfs, say
    (seed / "data.txt").write_text("payload\n")
    git("add", ".", cwd=seed)
    git("commit", "--quiet", "-m", "hostile", cwd=seed)
    git("push", "--quiet", "origin", "main", cwd=seed)
    ran = tmp_path / "filter-ran"
    home = tmp_path / "operator-home"
    home.mkdir()
    (home / ".gitconfig").write_text(f'[filter "lfs"]\n\tsmudge = "touch {ran}; cat"\n')
    monkeypatch.setenv("HOME", str(home))  # the service's user's global git configuration
    projects = tmp_path / "projects"
    projects.mkdir()
    dest = tmp_path / "ws" / "gadgets"
    with GitHttpServer(tmp_path / "git-host", TOKEN) as server:
        server.add_repo("acme", "gadgets", source=bare)
        workspace.prepare(dest, "gadgets", projects, "task/t1-fix", forge(tmp_path, server))

    assert (dest / "data.txt").read_text() == "payload\n"
    assert not ran.exists(), "a filter driver of the operator's configuration ran on the upstream's files"
