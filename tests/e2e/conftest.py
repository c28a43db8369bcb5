"""Fixtures of the end-to-end tests that push: the fake GitHub REST API and a real git server on loopback,
both knowing the repository acme/calc."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_github import FakeGitHub
from tests.support.git_http import GitHttpServer
from tests.support.repos import remote_with_project


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repo("acme", "calc")
        yield fake


@pytest.fixture
def git_host(tmp_path: Path, github: FakeGitHub) -> Iterator[GitHttpServer]:
    bare, _ = remote_with_project(tmp_path, "calc")
    with GitHttpServer(tmp_path / "git-host", github.token) as host:
        host.add_repo("acme", "calc", source=bare)
        github.git_root = host.root  # a PR's head is its branch's tip on this server
        yield host


@pytest.fixture
def workflow_env(tmp_path: Path, github: FakeGitHub, git_host: GitHttpServer) -> dict[str, str]:
    """A service running the event workflow on acme/calc: projects, the fake GitHub, the git server."""
    return {
        "USE_MULTI_AGENT_EVENTS": "true",
        "PROJECTS_DIR": str(tmp_path / "projects"),
        "GITHUB_TOKEN": github.token,
        "GITHUB_OWNER": "acme",
        "GITHUB_API_URL": github.api_url,
        "GITHUB_GIT_URL": git_host.url,
        "GITHUB_POLL_SECONDS": "0.2",
        "CHECKS_APPEAR_SECONDS": "0",
    }
