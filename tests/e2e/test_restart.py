"""A restart of the service loses no agent and no log line."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from tests.support import fake_anthropic as fm
from tests.support.server import RETRYING_CLI, Server, agent_pids, kill_agents_of


def _steps(fake_model: fm.FakeAnthropic, n: int, delay: float) -> str:
    steps: list[fm.Step] = [
        fm.tool("Bash", {"command": f"echo step-{i}", "description": f"step {i}"}, delay=delay)
        for i in range(n)
    ]
    return fake_model.scenario([*steps, fm.text("finished after restart", delay=delay)])


def _stdout_file_lines(run_dir: Path) -> list[str]:
    return (run_dir / "stdout").read_text().splitlines()


def _wait_lines(server: Server, agent_id: str, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(server.logs(agent_id)) < n:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _assert_running(server: Server, agent_id: str) -> int:
    """The agent's process, as its store row names it, is alive and is that agent's; its pid."""
    ((ref, status),) = server.query(f"SELECT container_id, status FROM agents WHERE id = '{agent_id}'")
    assert status == "running", status
    pid = int(ref.removeprefix("host-pid-"))
    assert (server.data_dir / "runs" / agent_id / "pid").read_text().strip() == str(pid)
    os.kill(pid, 0)  # ProcessLookupError: the process is gone
    assert pid in agent_pids(agent_id), f"pid {pid} is no longer agent {agent_id}'s"
    assert not (server.data_dir / "runs" / agent_id / "exit_code").exists()
    return pid


def _assert_adopted_whole(second: Server, agent: dict[str, Any], lines_before_adoption: int) -> None:
    """The agent ended completed under `second`, which wrote lines of its own after the adoption, and
    the store holds every line of its output once, in order."""
    done = second.wait_agent(agent["id"], timeout=60)
    assert (done["status"], done["end_reason"]) == ("completed", "completed"), done
    assert done["metadata"]["result"] == "finished after restart"
    assert done["instance_id"] != agent["instance_id"]
    assert f"adopted agent {agent['id']}" in second.log()

    logs = second.logs(agent["id"])
    ids = [ln["id"] for ln in logs]
    assert ids == sorted(set(ids))
    stored = [ln["content"] for ln in logs if ln["stream"] == "stdout"]
    written = _stdout_file_lines(second.data_dir / "runs" / agent["id"])
    assert stored == written
    assert len(set(stored)) == len(stored), "a line was stored twice"
    assert len(written) > lines_before_adoption, "the agent wrote nothing after the adoption"
    assert done["log_lines"] == len(logs)


def test_agent_running_through_a_crash_is_adopted_with_every_line(make_server, fake_model) -> None:  # type: ignore[no-untyped-def]
    first = make_server(kill_agents_on_shutdown=False, **RETRYING_CLI)
    agent = first.spawn(f"steps {_steps(fake_model, 6, 0.5)}")
    _wait_lines(first, agent["id"], 3)
    first.crash()
    pid = _assert_running(first, agent["id"])
    lines_before = len(_stdout_file_lines(first.data_dir / "runs" / agent["id"]))

    second = make_server(data_dir=first.data_dir, **RETRYING_CLI)
    assert _assert_running(second, agent["id"]) == pid
    _assert_adopted_whole(second, agent, lines_before)


def test_agent_left_running_by_a_normal_stop_is_adopted_by_the_next_start(make_server, fake_model) -> None:  # type: ignore[no-untyped-def]
    # the production stop: SIGTERM to `orchestrator serve` without --kill-agents-on-shutdown
    first = make_server(kill_agents_on_shutdown=False, **RETRYING_CLI)
    agent = first.spawn(f"steps {_steps(fake_model, 6, 0.5)}")
    _wait_lines(first, agent["id"], 3)
    assert first.proc is not None
    service = first.proc
    first.stop()
    # uvicorn raises the signal again once it has shut down; a stop that hung would have been SIGKILLed
    assert service.returncode in (0, -signal.SIGTERM), first.log()[-3000:]
    pid = _assert_running(first, agent["id"])
    lines_before = len(_stdout_file_lines(first.data_dir / "runs" / agent["id"]))

    second = make_server(data_dir=first.data_dir, **RETRYING_CLI)
    assert _assert_running(second, agent["id"]) == pid
    _assert_adopted_whole(second, agent, lines_before)


def test_agent_that_ended_while_the_service_was_down_is_finished_at_start(make_server, fake_model) -> None:  # type: ignore[no-untyped-def]
    # a sandboxed agent's model calls need the service (its egress proxy): only an agent on the host's
    # network can finish while the service is down
    first = make_server(kill_agents_on_shutdown=False, AGENT_SANDBOX="none")
    agent = first.spawn(f"steps {_steps(fake_model, 2, 0.3)}")
    _wait_lines(first, agent["id"], 1)
    first.crash()
    run_dir = first.data_dir / "runs" / agent["id"]
    deadline = time.monotonic() + 30
    while not (run_dir / "exit_code").exists():
        assert time.monotonic() < deadline, "the agent should finish on its own"
        time.sleep(0.1)

    second = make_server(data_dir=first.data_dir, AGENT_SANDBOX="none")
    done = second.wait_agent(agent["id"], timeout=30)
    assert done["status"] == "completed"
    assert done["exit_code"] == 0
    stored = [ln["content"] for ln in second.logs(agent["id"]) if ln["stream"] == "stdout"]
    assert stored == _stdout_file_lines(run_dir)


def test_agent_whose_output_is_gone_fails_with_the_reason(make_server, fake_model) -> None:  # type: ignore[no-untyped-def]
    first = make_server(kill_agents_on_shutdown=False)
    agent = first.spawn(f"steps {_steps(fake_model, 3, 1.0)}")
    first.crash()
    run_dir = first.data_dir / "runs" / agent["id"]
    kill_agents_of(first.data_dir)
    for path in sorted(run_dir.rglob("*"), reverse=True):
        path.unlink() if path.is_file() or path.is_symlink() else path.rmdir()
    run_dir.rmdir()

    second = make_server(data_dir=first.data_dir)
    done = second.wait_agent(agent["id"], timeout=10)
    assert (done["status"], done["end_reason"]) == ("failed", "lost")
    assert "restart" in done["error"]


def test_a_stop_while_a_queue_agent_runs_ends_the_service(make_server, fake_model) -> None:  # type: ignore[no-untyped-def]
    # the agent ends (killed by the shutdown) and wakes the queue processor just as it is cancelled: the
    # processor must still end, or the service hangs until it is SIGKILLed
    server = make_server()
    task = server.client.post(
        "/api/tasks", json={"title": "slow", "description": _steps(fake_model, 20, 0.5)}
    )
    assert task.status_code == 201, task.text
    assert server.client.post(f"/api/queue/add/{task.json()['id']}").status_code == 201
    deadline = time.monotonic() + 30
    while server.client.get(f"/api/tasks/{task.json()['id']}").json()["status"] != "in_progress":
        assert time.monotonic() < deadline, server.client.get("/api/queue").json()
        time.sleep(0.05)
    _wait_lines(server, server.client.get(f"/api/tasks/{task.json()['id']}").json()["agents"][0]["id"], 1)
    assert server.proc is not None
    service = server.proc
    started = time.monotonic()
    server.stop()
    assert service.returncode in (0, -signal.SIGTERM), (
        f"SIGKILLed after a stop that hung:\n{server.log()[-3000:]}"
    )
    assert time.monotonic() - started < 20
