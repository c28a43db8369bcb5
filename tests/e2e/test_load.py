"""A hundred agents at once on one server: all of them complete, every line each one printed is stored
once and in order, and no process is left behind."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from orchestrator.runtimes.procfs import MARKER_VARIABLE
from tests.support import integrity
from tests.support.server import Server, marked_processes

ServerFactory = Callable[..., Server]

AGENTS = 100
LINES = 20
RESULT_LINE = '{"type":"result","subtype":"success","is_error":false,"result":"ok"}'


def agent_script(tmp_path: Path, go: Path) -> str:
    """A `claude` that waits for `go`, then prints LINES stream-json lines naming its agent, then a result."""
    path = tmp_path / "claude"
    path.write_text(
        "#!/bin/sh\n"
        f"while [ ! -e {go} ]; do sleep 0.1; done\n"
        f"i=0\nwhile [ $i -lt {LINES} ]; do\n"
        "  i=$((i+1))\n"
        f'  echo "{{\\"type\\":\\"assistant\\",\\"agent\\":\\"${MARKER_VARIABLE}\\",\\"n\\":$i}}"\n'
        "done\n"
        f"echo '{RESULT_LINE}'\n"
    )
    path.chmod(0o755)
    return str(path)


def expected_lines(agent_id: str) -> list[str]:
    lines = [
        json.dumps({"type": "assistant", "agent": agent_id, "n": n}, separators=(",", ":"))
        for n in range(1, LINES + 1)
    ]
    return [*lines, RESULT_LINE]


def wait_statuses(server: Server, status: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        total = server.client.get("/api/agents", params={"status": status, "limit": 1}).json()["total"]
        if total == count:
            return
        assert time.monotonic() < deadline, f"{total} of {count} agents {status} after {timeout} s"
        time.sleep(0.2)


def test_a_hundred_agents_at_once_all_complete_with_every_line_once_in_order(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    # AGENT_SANDBOX=none: `go` is in the test's /tmp, which a sandbox replaces with its own
    go = tmp_path / "go"
    server = make_server(
        CLAUDE_BIN=agent_script(tmp_path, go), SPAWN_RATE_PER_MINUTE="1000", AGENT_SANDBOX="none"
    )
    body = {"agent_type": "coding", "prompt": "one of a hundred"}
    with (
        httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        answers = list(pool.map(lambda _: client.post("/api/agents/spawn", json=body), range(AGENTS)))
    assert [a.status_code for a in answers] == [201] * AGENTS, [
        a.text for a in answers if a.status_code != 201
    ]
    ids = [a.json()["id"] for a in answers]
    assert len(set(ids)) == AGENTS

    wait_statuses(server, "running", AGENTS, timeout=120)
    # a process in the middle of an exec may show an empty environment for a moment: look again
    deadline = time.monotonic() + 10
    while missing := set(ids) - set(marked_processes()):
        assert time.monotonic() < deadline, f"every agent's process is alive together: {missing} are not"
        time.sleep(0.2)
    go.touch()
    wait_statuses(server, "completed", AGENTS, timeout=300)

    for agent_id in ids:
        agent = server.agent(agent_id)
        assert agent["status"] == "completed", (agent_id, agent["error"])
        assert [line["content"] for line in server.logs(agent_id)] == expected_lines(agent_id), agent_id
        assert agent["log_lines"] == LINES + 1
    assert integrity.counts(server)["agent_logs"] == AGENTS * (LINES + 1)

    deadline = time.monotonic() + 30
    while left := {a: p for a, p in marked_processes().items() if a in ids}:
        assert time.monotonic() < deadline, f"processes left behind: {left}"
        time.sleep(0.2)
    assert integrity.problems(server, allow_active=False) == []
    assert server.client.get("/api/health").json()["running_agents"] == 0
