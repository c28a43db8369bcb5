"""Workspace hooks of a repository's `.orchestrator/workflow.toml` through the real server, real `claude`
agents against the fake model, real git and real bubblewrap: their order around each agent, their output
stored as the agent's `hook` lines, the sandbox they run in, and a failing or hanging hook failing the
agent before its CLI starts."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_workflow import APPROVE, CODING, PLAN, REVIEWER, STARTER, commit, outcome
from tests.e2e.test_workflow_file import _commit_file, _queue, _wait_task
from tests.support import fake_anthropic as fm
from tests.support.fake_github import FakeGitHub
from tests.support.git_http import GitHttpServer
from tests.support.runtimes import require_bwrap
from tests.support.server import Server
from tests.support.sse import events


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """Not under /tmp, which the sandbox replaces anyway: only the data directory's mask hides it."""
    base = Path(tempfile.mkdtemp(prefix="orch-hooks-", dir="/var/tmp"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


ORDER = ".git/hook-order"  # in the checkout: what the sandbox lets a hook write


def _hooks(server: Server, agent_id: str) -> list[str]:
    return [line["content"] for line in server.logs(agent_id) if line["stream"] == "hook"]


def _wait_gone(path: Path, server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while path.exists():
        assert time.monotonic() < deadline, f"{path} still there\n{server.log()}"
        time.sleep(0.1)


def test_hooks_run_in_order_inside_the_sandbox_and_their_output_is_the_agents_hook_lines(
    outside_tmp: Path,
    make_server,
    workflow_env: dict[str, str],
    fake_model: fm.FakeAnthropic,
    git_host: GitHttpServer,
    github: FakeGitHub,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    require_bwrap()
    data_dir = outside_tmp / "service-data"
    workflow = f"""\
[stages]
skip = ["deployer", "verifier"]

[hooks]
timeout_seconds = 60
after_create = "echo after_create >> {ORDER}; echo made in $(basename $(pwd))"
before_run = '''
echo before_run >> {ORDER}
echo host=$(uname -n)
cat "{data_dir}/api-token" || echo no-token-here
ls -A "{data_dir}" | sed 's/^/data: /'
env | sed 's/^/env: /'
'''
after_run = "echo after_run >> {ORDER}; echo after_run said"
before_remove = "echo before_remove; tr '\\\\n' ' ' < {ORDER}"
"""
    _commit_file(git_host.root / "acme" / "calc.git", workflow, tmp_path)
    empty = tmp_path / "no-projects"
    empty.mkdir()
    server = make_server(
        **{**workflow_env, "PROJECTS_DIR": str(empty)}, data_dir=data_dir, WORKSPACE_CLEANUP="on_end"
    )
    assert server.client.get("/api/health").json()["sandbox"] == "bwrap"
    marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [[commit("calc.py", "def add(a, b): return a + b", "Add"), outcome({"summary": "add"})]],
            REVIEWER: [[APPROVE]],
        }
    )
    task_id = _queue(server, f"Write calc.add. {marker}")
    task = _wait_task(server, task_id)
    assert task["status"] == "completed", (task["error"], [e["type"] for e in task["events"]])
    starter, coding, reviewer = (a["id"] for a in task["agents"])
    _wait_gone(data_dir / "workspaces" / "tasks" / task_id, server)

    first = _hooks(server, starter)
    assert first[0] == "made in calc" and first[1] == "host=agent", first  # after_create, then before_run
    assert "no-token-here" in first, first
    # the data directory is an empty mask; only the mount points of the agent's own directories show
    assert {line for line in first if line.startswith("data: ")} <= {"data: runs", "data: workspaces"}
    env = {
        line[5:].partition("=")[0]: line[5:].partition("=")[2] for line in first if line.startswith("env: ")
    }
    assert env["HOME"].endswith(f"/runs/{starter}/home") and "PATH" in env
    assert "GITHUB_TOKEN" not in env and "ORCHESTRATOR_API_TOKEN" not in env and "DATABASE_URL" not in env
    assert env["ORCHESTRATOR_AGENT_ID"] == f"{starter}.before_run"  # its own marker, not the agent's
    said = "\n".join(first)
    assert server.token and server.token not in said and github.token not in said
    assert first[-1] == "after_run said"
    # around the agent's own output: the hooks before its first line, after_run after its last
    streams = [stream for stream, _ in groupby(line["stream"] for line in server.logs(starter))]
    assert streams[0] == "hook" and streams[-1] == "hook" and "stdout" in streams[1:-1], streams
    assert "hook" not in streams[1:-1]

    assert _hooks(server, coding)[-1] == "after_run said"
    assert not any(line.startswith("made in") for line in _hooks(server, coding))  # created once
    last = _hooks(server, reviewer)
    assert last[-2:] == [
        "before_remove",
        "after_create before_run after_run before_run after_run before_run after_run ",
    ], last


def _sleepers(tag: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if tag.encode() in cmdline and b"sleep" in cmdline:
                found.append(int(name))
    return found


def _only_agent(server: Server, task: dict[str, Any]) -> dict[str, Any]:
    assert len(task["agents"]) == 1, task["agents"]
    return server.agent(task["agents"][0]["id"])


def test_a_failing_or_hanging_before_run_fails_the_agent_with_its_output_and_no_cli_starts(
    make_server, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    require_bwrap()
    project = Path(workflow_env["PROJECTS_DIR"]) / "calc"
    server = make_server(**workflow_env)
    server.client.post("/api/queue/settings", json={"key": "stop_on_failure", "value": False})
    marker = fake_model.roles({STARTER: [[PLAN]]})

    _commit_file(
        project,
        '[hooks]\nafter_create = "echo set up"\n'
        'before_run = "sleep 5617.5 & echo cannot install deps >&2; exit 3"\n',
        tmp_path,
    )
    failed = _wait_task(server, _queue(server, f"One. {marker}"))
    assert failed["status"] == "failed"
    agent = _only_agent(server, failed)
    assert (agent["status"], agent["end_reason"]) == ("failed", "hook_failed")
    assert agent["error"] == "before_run hook exited 3: cannot install deps", agent["error"]
    assert _hooks(server, agent["id"]) == ["set up", "cannot install deps"]
    assert [line["stream"] for line in server.logs(agent["id"])] == ["hook", "hook"]  # no CLI output
    assert _sleepers("5617.5") == []  # what it left running went with its sandbox

    tag = "3617.25"  # a sleep only this hook runs
    _commit_file(
        project, f'[hooks]\ntimeout_seconds = 5\nbefore_run = "echo napping; sleep {tag}"\n', tmp_path
    )
    started = time.monotonic()
    hung = _wait_task(server, _queue(server, f"Two. {marker}"))
    assert time.monotonic() - started < 30
    agent = _only_agent(server, hung)
    assert agent["end_reason"] == "hook_failed"
    assert agent["error"] == "before_run hook timed out after 5 s and was killed: napping", agent["error"]
    assert _sleepers(tag) == []  # its whole process tree went with it

    # a kill while the hooks run ends them and the agent; its CLI never starts
    long_nap = "4617.5"
    sleeping = (
        f'[hooks]\ntimeout_seconds = 600\nbefore_run = "echo long nap; sleep 4; echo still napping; '
        f'sleep {long_nap}"\n'
    )
    _commit_file(project, sleeping, tmp_path)
    task_id = _queue(server, f"Three. {marker}")
    deadline = time.monotonic() + 60
    while not (agents := server.client.get(f"/api/tasks/{task_id}").json()["agents"]):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    # its lines reach the agent's live log as they come, while the agent is starting
    url = f"/api/agents/{agents[0]['id']}/logs"
    seen: list[tuple[str, str, float]] = []
    with server.client.stream("GET", url, headers={"Accept": "text/event-stream"}, timeout=60) as response:
        for event in events(response):
            assert event.event == "log", event
            seen.append((event.data["stream"], event.data["content"], time.monotonic()))
            if event.data["content"] == "still napping":
                break
    assert [(stream, content) for stream, content, _ in seen] == [
        ("hook", "long nap"),
        ("hook", "still napping"),
    ]
    assert seen[1][2] - seen[0][2] > 1.0  # the second came live, seconds after the first
    while not _sleepers(long_nap):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    assert server.agent(agents[0]["id"])["status"] == "starting"
    killed = server.client.post(f"/api/agents/{agents[0]['id']}/kill")
    assert killed.status_code == 200, killed.text
    assert (killed.json()["status"], killed.json()["end_reason"]) == ("killed", "killed")
    assert _sleepers(long_nap) == []
    assert _wait_task(server, task_id)["status"] == "failed"
    assert fake_model.requests_for(marker) == []  # no agent's CLI ever started
