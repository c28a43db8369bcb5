"""Two repositories of one name under different owners (`a/calc`, `b/calc`), in one task: each has its own
mirror, checkout and project directory, and a branch taken from one checkout goes to its own upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.agents import workspace
from orchestrator.forge.mirror import Mirrors
from orchestrator.forge.names import RepoRef
from orchestrator.forge.publisher import Publisher
from orchestrator.forge.sources import ForgeRepos
from tests.support.git_http import GitHttpServer
from tests.support.repos import git, remote_with_project

TOKEN = "ghp_SameName0123456789abcdefABCDEF0123"


def _own_commit(bare: Path, tmp_path: Path, owner: str) -> None:
    seed = tmp_path / f"seed-{owner}"
    git("clone", "--quiet", str(bare), str(seed))
    (seed / "OWNER.txt").write_text(f"{owner}\n")
    git("add", "OWNER.txt", cwd=seed)
    git("commit", "--quiet", "-m", f"{owner}'s calc", cwd=seed)
    git("push", "--quiet", "origin", "main", cwd=seed)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path / "git-host", TOKEN) as server:
        for owner in ("a", "b"):
            bare, _ = remote_with_project(tmp_path / f"upstream-{owner}", "calc")
            _own_commit(server.add_repo(owner, "calc", source=bare), tmp_path, owner)
        yield server


def test_checkout_directories_of_same_named_repositories_differ() -> None:
    assert workspace.checkout_names(["a/calc", "b/calc"]) == {"a/calc": "a@calc", "b/calc": "b@calc"}
    assert workspace.checkout_names(["calc", "b/Calc"]) == {"calc": "calc", "b/Calc": "b@Calc"}
    assert workspace.checkout_names(["a/calc", "b/lib"]) == {"a/calc": "calc", "b/lib": "lib"}


def test_a_task_on_a_calc_and_b_calc_shares_no_mirror_checkout_or_push(
    tmp_path: Path, host: GitHttpServer
) -> None:
    mirrors = Mirrors(tmp_path / "data" / "mirrors")
    forge = ForgeRepos(mirrors, host.url, "acme", TOKEN)
    projects = tmp_path / "projects"
    projects.mkdir()
    ws = tmp_path / "ws"
    checkouts = workspace.prepare_task(ws, projects, "t1", "Fix both", ["a/calc", "b/calc"], forge)

    primary, [other] = checkouts.primary, checkouts.others
    assert primary != other
    assert (primary / "OWNER.txt").read_text() == "a\n" and (other / "OWNER.txt").read_text() == "b\n"
    assert git("remote", "get-url", "origin", cwd=other) == f"{host.url}/b/calc.git"
    assert mirrors.path(RepoRef("a", "calc")) != mirrors.path(RepoRef("b", "calc"))
    for owner in ("a", "b"):
        assert (tmp_path / "data" / "mirrors" / owner / "calc.git" / "HEAD").is_file()

    publisher = Publisher(mirrors, host.url, "acme", TOKEN)
    for checkout, owner in ((primary, "a"), (other, "b")):
        (checkout / "CHANGED.txt").write_text(f"by the task, in {owner}'s calc\n")
        git("add", "CHANGED.txt", cwd=checkout)
        git("commit", "--quiet", "-m", f"change {owner}", cwd=checkout)
        publisher.take_and_push(f"{owner}/calc", checkout, checkouts.branch)
    for owner in ("a", "b"):
        hosted = host.root / owner / "calc.git"
        assert git("show", f"refs/heads/{checkouts.branch}:OWNER.txt", cwd=hosted) == owner
        assert git("show", f"refs/heads/{checkouts.branch}:CHANGED.txt", cwd=hosted) == (
            f"by the task, in {owner}'s calc"
        )
    # the checkout a later step of the task is given is the same one, never the other owner's
    again = workspace.prepare_task(ws, projects, "t1", "Fix both", ["a/calc", "b/calc"], forge)
    assert (again.primary, again.others) == (primary, [other])


def test_a_project_directory_serves_only_its_own_owner(tmp_path: Path) -> None:
    projects = tmp_path / "projects"
    _, flat = remote_with_project(tmp_path, "calc")  # projects/calc
    git("remote", "set-url", "origin", "https://github.com/a/calc.git", cwd=flat)
    assert workspace.project_of(projects, "a/calc") == flat
    assert workspace.project_of(projects, "calc") == flat
    assert workspace.project_of(projects, "b/calc") is None, "a's clone is not b's calc"
    assert not workspace.in_projects(projects, "b/calc")

    nested = projects / "b" / "calc"
    git("clone", "--quiet", str(flat), str(nested))
    assert workspace.project_of(projects, "b/calc") == nested
    assert workspace.project_of(projects, "a/calc") == flat
    git("remote", "set-url", "origin", "git@github.com:b/calc.git", cwd=nested)
    assert workspace.project_of(projects, "b/calc") == nested
