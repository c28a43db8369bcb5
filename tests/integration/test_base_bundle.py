"""Before a conflict fix-up the service brings the base branch's new commits within the agent's reach: the
upstream (real git over smart HTTP on loopback) fetched into the mirror, a bundle of the base written
from there, placed beside the checkouts without following anything an agent may have left there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.agents import workspace
from orchestrator.forge.mirror import Mirrors
from orchestrator.forge.publisher import Publisher
from orchestrator.forge.sources import ForgeRepos
from orchestrator.workflow import base_bundle
from tests.integration.test_forge_checkout import TOKEN, on_disk
from tests.support.git_http import GitHttpServer
from tests.support.repos import git, remote_with_project


@pytest.fixture
def host(tmp_path: Path) -> Iterator[GitHttpServer]:
    bare, _ = remote_with_project(tmp_path / "upstream", "widgets")
    with GitHttpServer(tmp_path / "git-host", TOKEN) as server:
        server.add_repo("acme", "widgets", source=bare)
        yield server


def _upstream_commit(tmp_path: Path, host: GitHttpServer, name: str) -> str:
    seed = tmp_path / "upstream" / "seed" / "widgets"
    (seed / name).write_text(f"{name}\n")
    git("add", name, cwd=seed)
    git("commit", "--quiet", "-m", name, cwd=seed)
    git("push", "--quiet", str(host.root / "acme" / "widgets.git"), "main", cwd=seed)
    return git("rev-parse", "HEAD", cwd=seed)


def test_the_bundle_holds_the_upstreams_base_as_it_is_now_and_the_checkout_can_fetch_it(
    tmp_path: Path, host: GitHttpServer
) -> None:
    mirrors = Mirrors(tmp_path / "data" / "mirrors")
    publisher = Publisher(mirrors, host.url, "acme", TOKEN)
    root = tmp_path / "ws" / "tasks" / "t1"
    checkout = workspace.prepare(
        root / "widgets", "widgets", tmp_path, "task/t1", ForgeRepos(mirrors, host.url, "acme", TOKEN)
    )
    (checkout / "work.txt").write_text("the agent's work\n")
    git("add", "work.txt", cwd=checkout)
    git("commit", "--quiet", "-m", "work", cwd=checkout)
    publisher.take("widgets", checkout, "task/t1")
    newer = _upstream_commit(tmp_path, host, "NEWER.md")

    bundle = base_bundle.hand_base(publisher, root, "widgets", "main")

    assert bundle.sha == newer
    assert bundle.directory.parent == root and bundle.directory.name.startswith(base_bundle.DIR_PREFIX)
    assert bundle.path == bundle.directory / base_bundle.BUNDLE_NAME
    assert git("bundle", "list-heads", str(bundle.path)) == f"{newer} refs/heads/main", "no task branch"
    assert workspace.checkouts_of(root) == [checkout], "the bundle's directory is not a checkout"
    assert on_disk(root) == [] and on_disk(tmp_path / "data") == []
    assert list((tmp_path / "data" / "mirrors" / ".tmp").iterdir()) == [], "scratch removed"
    # the agent's commands, as the prompt gives them
    git("fetch", "--quiet", str(bundle.path), "main", cwd=checkout)
    assert git("rev-parse", "FETCH_HEAD", cwd=checkout) == newer

    again = base_bundle.hand_base(publisher, root, "widgets", "main")
    assert again.directory != bundle.directory and not bundle.directory.exists(), "one bundle at a time"


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "service" / "made.bundle"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(b"# v2 git bundle\n")
    return source


def test_a_link_left_where_the_bundles_directory_goes_is_removed_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "tasks" / "t1"
    root.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("the service's\n")
    os.symlink(outside, root / ".base-planted")
    earlier = root / ".base-earlier"
    earlier.mkdir()
    os.symlink(outside / "keep", earlier / "link")

    placed = base_bundle.place(root, _source(tmp_path), ".base-planted")

    assert placed == root / ".base-planted" and not placed.is_symlink() and placed.is_dir()
    assert (placed / base_bundle.BUNDLE_NAME).read_bytes() == b"# v2 git bundle\n"
    assert sorted(p.name for p in outside.iterdir()) == ["keep"], "nothing written through the link"
    assert (outside / "keep").read_text() == "the service's\n", "an earlier bundle's links not followed"
    assert not earlier.exists()


def test_an_entry_already_at_the_new_name_is_an_error_never_followed_or_overwritten(tmp_path: Path) -> None:
    root = tmp_path / "tasks" / "t1"
    root.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "planted")
    with pytest.raises(FileExistsError):
        base_bundle.place(root, _source(tmp_path), "planted")
    assert list(outside.iterdir()) == []


def test_a_task_directory_that_is_a_link_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "tasks").mkdir()
    os.symlink(outside, tmp_path / "tasks" / "t1")
    with pytest.raises(OSError, match=r"symbolic links|Not a directory"):
        base_bundle.place(tmp_path / "tasks" / "t1", _source(tmp_path))
    assert list(outside.iterdir()) == []


def test_each_bundle_directory_has_a_new_random_name(tmp_path: Path) -> None:
    root = tmp_path / "tasks" / "t1"
    root.mkdir(parents=True)
    first = base_bundle.place(root, _source(tmp_path))
    second = base_bundle.place(root, _source(tmp_path))
    assert first != second and len(second.name) >= len(base_bundle.DIR_PREFIX) + 24
    assert [p.name for p in root.iterdir()] == [second.name]
