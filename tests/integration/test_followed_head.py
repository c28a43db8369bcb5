"""A PR head someone else pushed, followed for a repository that comes from the forge: real git over smart
HTTP on loopback into the service's mirror, and the task's checkout made again at the new head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.agents import workspace
from orchestrator.forge.mirror import Mirrors
from orchestrator.forge.publisher import Publisher
from orchestrator.forge.sources import ForgeRepos
from orchestrator.settings import Settings
from orchestrator.workflow.followed_head import take_head
from tests.support.git_http import GitHttpServer
from tests.support.repos import git, remote_with_project

TOKEN = "ghp_Followed0123456789abcdefABCDEF0123"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[GitHttpServer]:
    bare, _ = remote_with_project(tmp_path / "upstream", "widgets")
    with GitHttpServer(tmp_path / "git-host", TOKEN) as server:
        server.add_repo("acme", "widgets", source=bare)
        yield server


def test_a_pushed_head_comes_into_the_mirror_and_a_new_checkout(tmp_path: Path, host: GitHttpServer) -> None:
    (tmp_path / "no-projects").mkdir()
    settings = Settings(
        ORCHESTRATOR_DATA_DIR=tmp_path / "data",
        PROJECTS_DIR=tmp_path / "no-projects",
        GITHUB_GIT_URL=host.url,
        GITHUB_TOKEN=TOKEN,
        GITHUB_OWNER="acme",
    )
    publisher = Publisher(Mirrors(settings.mirrors_dir), host.url, "acme", TOKEN)
    checkouts = workspace.prepare_task(
        settings.resolved_workspaces_dir,
        settings.resolved_projects_dir,
        "t1",
        "Fix",
        ["widgets"],
        ForgeRepos.of(settings),
    )
    (checkouts.primary / "fix.txt").write_text("the agent's fix\n")
    (checkouts.primary / "stray.txt").write_text("left in the old checkout\n")
    git("add", "fix.txt", cwd=checkouts.primary)
    git("commit", "--quiet", "-m", "fix", cwd=checkouts.primary)
    ours = publisher.take_and_push("widgets", checkouts.primary, checkouts.branch).sha
    task = {"id": "t1", "repo": "widgets", "repos": ["widgets"], "head_sha": ours}
    assert take_head(settings, publisher, task, checkouts.branch) is None, "nothing pushed since: no change"

    person = tmp_path / "person"
    git(
        "clone", "--quiet", "--branch", checkouts.branch, str(host.root / "acme" / "widgets.git"), str(person)
    )
    (person / "person.txt").write_text("a person's line\n")
    git("add", "person.txt", cwd=person)
    git("commit", "--quiet", "-m", "a person's commit", cwd=person)
    git("push", "--quiet", "origin", checkouts.branch, cwd=person)
    theirs = git("rev-parse", "HEAD", cwd=person)

    assert take_head(settings, publisher, task, checkouts.branch) == theirs
    renewed = checkouts.primary
    assert git("rev-parse", "HEAD", cwd=renewed) == theirs
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=renewed) == checkouts.branch
    assert (renewed / "person.txt").read_text() == "a person's line\n"
    assert (renewed / "fix.txt").read_text() == "the agent's fix\n"
    assert not (renewed / "stray.txt").exists(), "a new checkout, not the old one"
    assert publisher.mirrors.tip(publisher.ref("widgets"), checkouts.branch) == theirs
    assert publisher.pushed("widgets", checkouts.branch, theirs), "the followed head counts as the branch's"
    assert TOKEN not in (renewed / ".git" / "config").read_text()
    assert str(settings.mirrors_dir) not in (renewed / ".git" / "config").read_text()
