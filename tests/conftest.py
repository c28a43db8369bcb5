from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.settings import installed_claude
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.postgres import new_database
from tests.support.server import Server


def claude_bin() -> str:
    given = os.environ.get("CLAUDE_BIN")
    if given:
        return given
    pinned = installed_claude()
    if not pinned.exists():
        pytest.fail(f"the claude CLI is not installed at {pinned}: run the test command from README.md")
    return str(pinned)


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def base_env(fake_model: FakeAnthropic) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "CLAUDE_BIN": claude_bin(),
        "ANTHROPIC_BASE_URL": fake_model.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-dummy-key-000000",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "AGENT_KILL_GRACE_SECONDS": "3",
        "LOG_LEVEL": "INFO",
    }


ServerFactory = Callable[..., Server]

TEST_PG = os.environ.get("ORCHESTRATOR_TEST_PG")


def fresh_postgres_database() -> str:
    """A new empty database on the tests' PostgreSQL; its URL."""
    assert TEST_PG is not None
    return new_database(TEST_PG)


@pytest.fixture
def make_server(tmp_path: Path, base_env: dict[str, str]) -> Iterator[ServerFactory]:
    servers: list[Server] = []
    databases: dict[Path, str] = {}

    def make(*, data_dir: Path | None = None, kill_agents_on_shutdown: bool = True, **env: str) -> Server:
        data_dir = data_dir or tmp_path / f"data{len(servers)}"
        if TEST_PG and "DATABASE_URL" not in env:
            if data_dir not in databases:
                databases[data_dir] = fresh_postgres_database()
            env["DATABASE_URL"] = databases[data_dir]
        server = Server(
            data_dir,
            {**base_env, **env},
            kill_agents_on_shutdown=kill_agents_on_shutdown,
        )
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def server(make_server: ServerFactory) -> Server:
    return make_server()
