"""Faults around the real server: the database locked by another process, the `claude` binary missing,
the model API down, GitHub down, the disk full.

Whatever fails: the answer names the problem with a 4xx/502/503 (never a 500), the service recovers
once the fault is gone, and no line an agent printed is lost or doubled.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from orchestrator.store.db import SQLITE_BUSY_TIMEOUT_MS
from tests.conftest import TEST_PG, claude_bin
from tests.support import fake_anthropic as fm
from tests.support import integrity
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.server import Server, agent_pids, free_port

ServerFactory = Callable[..., Server]

RESULT_LINE = '{"type":"result","subtype":"success","is_error":false,"result":"ok"}'
sqlite_only = pytest.mark.skipif(TEST_PG is not None, reason="locks and fills a SQLite file")


def script(tmp_path: Path, body: str, name: str = "claude") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


# the printer talks to the test through files in the test's /tmp, which a sandbox replaces with its own
UNSANDBOXED = {"AGENT_SANDBOX": "none"}


def printer(tmp_path: Path) -> tuple[str, Path, Path]:
    """A `claude` printing numbered lines until `stop` exists; what it printed also goes to `printed`.
    Returns (the script, stop, printed)."""
    stop, printed = tmp_path / "stop", tmp_path / "printed"
    body = (
        "i=0\n"
        f"while [ ! -e {stop} ]; do\n"
        '  i=$((i+1)); echo "line $i"; echo "line $i" >> ' + str(printed) + "\n"
        "  sleep 0.02\n"
        "done\n"
        f"echo '{RESULT_LINE}'\n"
    )
    return script(tmp_path, body), stop, printed


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.05)


def contents(server: Server, agent_id: str) -> list[str]:
    return [line["content"] for line in server.logs(agent_id)]


def every_printed_line_stored_once_in_order(server: Server, agent_id: str, printed: Path) -> None:
    expected = [*printed.read_text().splitlines(), RESULT_LINE]
    stored = contents(server, agent_id)
    assert stored == expected, (len(stored), len(expected), stored[-3:], expected[-3:])
    assert server.agent(agent_id)["log_lines"] == len(expected)


def no_problems(server: Server) -> None:
    integrity.wait_agents_ended(server, timeout=30)
    assert integrity.problems(server, allow_active=False) == []


# --- the SQLite database locked by another process ------------------------------------------------


@contextlib.contextmanager
def locked(database: Path) -> Iterator[sqlite3.Connection]:
    """Holds an exclusive write lock on the database from this process until the block ends."""
    conn = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield conn
        conn.execute("COMMIT")
    finally:
        conn.close()


def writes_while_locked(server: Server) -> list[httpx.Response]:
    """A task and a spawn sent while the lock is held: each waits out the busy timeout."""
    timeout = SQLITE_BUSY_TIMEOUT_MS / 1000 + 30
    with (
        httpx.Client(base_url=server.url, headers=server.headers, timeout=timeout) as client,
        ThreadPoolExecutor(2) as pool,
    ):
        task = pool.submit(client.post, "/api/tasks", json={"id": "while-locked", "title": "t"})
        spawn = pool.submit(
            client.post, "/api/agents/spawn", json={"agent_type": "coding", "prompt": "while locked"}
        )
        return [task.result(), spawn.result()]


def unavailable_with_retry_after(responses: list[httpx.Response]) -> None:
    for response in responses:
        assert response.status_code == 503, (response.request.url, response.status_code, response.text)
        assert "retry-after" in response.headers
        assert "database" in response.json()["detail"]


@sqlite_only
def test_a_locked_database_answers_503_loses_no_line_and_recovers(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    claude, stop, printed = printer(tmp_path)
    server = make_server(CLAUDE_BIN=claude, **UNSANDBOXED)
    agent = server.spawn("print lines")
    wait_for("the agent printed", lambda: len(contents(server, agent["id"])) >= 5)
    with locked(server.data_dir / "orchestrator.db"):
        printed_before = len(printed.read_text().splitlines())
        unavailable_with_retry_after(writes_while_locked(server))
        assert server.client.get(f"/api/agents/{agent['id']}").status_code == 200
        assert len(printed.read_text().splitlines()) > printed_before, "the agent printed during the lock"
    created = server.client.post("/api/tasks", json={"id": "after-lock", "title": "t"})
    assert created.status_code == 201, created.text
    stop.touch()
    done = server.wait_agent(agent["id"])
    assert done["status"] == "completed", done["error"]
    every_printed_line_stored_once_in_order(server, agent["id"], printed)
    assert [t["id"] for t in server.client.get("/api/tasks").json()["items"]] == ["after-lock"]
    assert server.client.get("/api/agents").json()["total"] == 1
    later = server.wait_agent(server.spawn("after the lock")["id"])
    assert later["status"] == "completed", later["error"]
    no_problems(server)


@sqlite_only
def test_an_agent_ending_while_the_database_is_locked_is_recorded_after(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    claude, stop, printed = printer(tmp_path)
    server = make_server(CLAUDE_BIN=claude, **UNSANDBOXED)
    agent = server.spawn("print lines, end during the lock")
    wait_for("the agent printed", lambda: len(contents(server, agent["id"])) >= 5)
    with locked(server.data_dir / "orchestrator.db"):
        stop.touch()
        wait_for("the agent ended", lambda: agent_pids(agent["id"]) == [])
        unavailable_with_retry_after(writes_while_locked(server))
    done = server.wait_agent(agent["id"], timeout=60)
    assert done["status"] == "completed", done["error"]
    every_printed_line_stored_once_in_order(server, agent["id"], printed)
    no_problems(server)


# --- the claude binary missing -----------------------------------------------------------------------


def test_a_missing_claude_binary_refuses_spawns_and_shows_in_health(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    missing = str(tmp_path / "nowhere" / "claude")
    server = make_server(CLAUDE_BIN=missing)
    health = server.client.get("/api/health")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert missing in health.json()["claude"] and "not found" in health.json()["claude"]
    response = server.client.post("/api/agents/spawn", json={"agent_type": "coding", "prompt": "x"})
    assert 400 <= response.status_code < 500 or response.status_code == 503, response.text
    assert missing in response.json()["detail"]
    assert server.client.get("/api/agents").json()["total"] == 0


def test_a_task_queued_while_claude_is_missing_waits_and_starts_once_it_is_back(
    make_server: ServerFactory, tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    missing = tmp_path / "later" / "claude"
    server = make_server(CLAUDE_BIN=str(missing))
    marker = fake_model.scenario([fm.text("done")])
    response = server.client.post("/api/tasks", json={"id": "early", "title": "early", "description": marker})
    assert response.status_code == 201, response.text
    assert server.client.post("/api/queue/add/early").status_code == 201

    deadline = time.monotonic() + 30
    while True:
        queued = server.client.get("/api/queue").json()["items"]
        item = next((i for i in queued if i["task_id"] == "early" and i["error"]), None)
        if item is not None:
            break
        assert time.monotonic() < deadline, server.client.get("/api/queue").json()
        time.sleep(0.1)
    assert "waiting to start" in item["error"] and "not found" in item["error"], item
    assert item["retry_at"], item
    assert server.client.get("/api/tasks/early").json()["status"] == "queued"
    settings = server.client.get("/api/queue/settings").json()
    assert settings["paused"] is False, settings

    missing.parent.mkdir()
    missing.symlink_to(claude_bin())
    deadline = time.monotonic() + 90
    while server.client.get("/api/tasks/early").json()["status"] != "completed":
        assert time.monotonic() < deadline, server.client.get("/api/queue").json()
        time.sleep(0.2)
    assert server.client.get("/api/queue/settings").json()["paused"] is False


# --- the model API down ------------------------------------------------------------------------------


def _task(server: Server, task_id: str) -> None:
    response = server.client.post("/api/tasks", json={"id": task_id, "title": f"task {task_id}"})
    assert response.status_code == 201, response.text
    assert server.client.post(f"/api/queue/add/{task_id}").status_code == 201


def test_the_model_api_down_fails_the_agent_with_its_reason_and_pauses_the_queue(
    make_server: ServerFactory,
) -> None:
    server = make_server(ANTHROPIC_BASE_URL=f"http://127.0.0.1:{free_port()}", CLAUDE_CODE_MAX_RETRIES="0")
    client = server.client
    assert client.post("/api/queue/settings", json={"key": "paused", "value": True}).status_code == 200
    _task(server, "first")
    _task(server, "second")
    settings = client.get("/api/queue/settings").json()
    assert settings["stop_on_failure"] is True and settings["max_concurrent"] == 1
    assert client.post("/api/queue/settings", json={"key": "paused", "value": False}).status_code == 200

    wait_for(
        "the first task failed",
        lambda: client.get("/api/tasks/first").json()["status"] == "failed",
        timeout=120,
    )
    agents = client.get("/api/agents", params={"task_id": "first"}).json()["items"]
    assert len(agents) == 1
    agent = agents[0]
    assert agent["status"] == "failed"
    assert agent["error"], agent
    # direct, the CLI names the refusal; through the sandbox's egress proxy, the proxy names it (a 502
    # "cannot connect"), or the CLI sees the connection dropped
    reason = agent["error"].lower()
    assert any(w in reason for w in ("connection refused", "cannot connect", "connection dropped")), reason
    wait_for("the queue paused", lambda: client.get("/api/queue/settings").json()["paused"] is True)
    queue = client.get("/api/queue").json()
    assert "first" in (queue["pause_reason"] or "")
    assert [(i["task_id"], i["status"]) for i in queue["items"]] == [("second", "queued")]
    assert client.get("/api/agents", params={"task_id": "second"}).json()["total"] == 0
    assert client.get("/api/tasks/second").json()["status"] == "queued"
    no_problems(server)


# --- GitHub down -------------------------------------------------------------------------------------

GITHUB_TOKEN = "ghp_faultTestSecretToken0123456789abcdef"


def test_github_down_answers_502_or_503_without_the_token(make_server: ServerFactory) -> None:
    server = make_server(
        GITHUB_API_URL=f"http://127.0.0.1:{free_port()}",
        GITHUB_TOKEN=GITHUB_TOKEN,
        LOG_LEVEL="DEBUG",
    )
    answers: dict[str, httpx.Response] = {}
    for path in (
        "/api/github/repo/some-repo",
        "/api/github/repo/some-owner/some-repo",
        "/api/github/repo/some-repo/default-branch",
        "/api/github/status",
    ):
        answers[path] = server.client.get(path)
    for path, response in answers.items():
        if path == "/api/github/status":
            assert response.status_code in (200, 502, 503), response.text
        else:
            assert response.status_code in (502, 503), (path, response.status_code, response.text)
            assert "GitHub" in response.json()["detail"], (path, response.text)
        assert GITHUB_TOKEN not in response.text
        assert all(GITHUB_TOKEN not in value for value in response.headers.values())
    healthy = server.client.get("/api/health")
    assert healthy.status_code == 200
    assert GITHUB_TOKEN not in server.log()


# --- the disk full ---------------------------------------------------------------------------------


def _can_mount() -> str | None:
    import os

    if os.geteuid() != 0:
        return "needs root to mount a tmpfs"
    if TEST_PG is not None:
        return "fills the disk under a SQLite file"
    return None


@contextlib.contextmanager
def small_tmpfs(where: Path, size_mb: int) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Writes a file until the filesystem has no space left; returns it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * size)
    return filler


@pytest.mark.skipif(_can_mount() is not None, reason=_can_mount() or "")
def test_a_full_disk_answers_503_loses_no_line_and_recovers(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    claude, stop, printed = printer(tmp_path)
    with small_tmpfs(tmp_path / "small", 16) as small:
        server = make_server(
            CLAUDE_BIN=claude, DATABASE_URL=f"sqlite:///{small / 'orchestrator.db'}", **UNSANDBOXED
        )
        agent = server.spawn("print lines")
        wait_for("the agent printed", lambda: len(contents(server, agent["id"])) >= 5)
        filler = fill(small)
        refused: list[tuple[int, str]] = []
        big = "x" * 90_000
        for i in range(20):
            response = server.client.post(
                "/api/tasks", json={"id": f"full-{i}", "title": "t", "description": big}
            )
            assert response.status_code in (201, 503), (response.status_code, response.text)
            if response.status_code == 503:
                refused.append((response.status_code, response.text))
                assert "retry-after" in response.headers
                break
        assert refused, "no write was refused on a full disk"
        assert "full" in refused[0][1]
        printed_when_full = len(printed.read_text().splitlines())
        wait_for(
            "the agent printed on the full disk",
            lambda: len(printed.read_text().splitlines()) >= printed_when_full + 10,
        )
        assert server.client.get(f"/api/agents/{agent['id']}/logs").status_code == 200
        filler.unlink()
        created = server.client.post("/api/tasks", json={"id": "after-full", "title": "t"})
        assert created.status_code == 201, created.text
        stop.touch()
        done = server.wait_agent(agent["id"], timeout=60)
        assert done["status"] == "completed", done["error"]
        every_printed_line_stored_once_in_order(server, agent["id"], printed)
        assert server.client.get("/api/tasks/after-full").status_code == 200
        no_problems(server)
        server.close()
