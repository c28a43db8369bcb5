"""The `orchestrator` command as a real subprocess against the real server: JSON, exit codes, live logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.models import AgentDetail, AgentPage, Health, LogPage, QueueStatus, Task, TaskPage
from tests.conftest import ServerFactory, claude_bin
from tests.support import fake_anthropic as fm
from tests.support.fake_github import FakeGitHub
from tests.support.server import Server, free_port


def cli(*args: str, url: str | Server, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: against a Server, with the server's data directory in its environment
    (as `serve` had it) and no token: the CLI finds the one the server generated."""
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONIOENCODING": "utf-8",
    }
    if isinstance(url, Server):
        base["ORCHESTRATOR_DATA_DIR"] = str(url.data_dir)
        url = url.url
    base["ORCHESTRATOR_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )


def ok_json(*args: str, url: str | Server, **env: str) -> Any:
    proc = cli(*args, "--json", url=url, **env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return json.loads(proc.stdout)


def refused(proc: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], proc.stderr
    assert proc.stdout == ""


def test_tasks_events_github_json_and_exit_codes(server: Server) -> None:
    url = server
    assert Health.model_validate(ok_json("health", url=url)).status == "ok"
    assert "ok" in cli("health", url=url).stdout

    task = Task.model_validate(
        ok_json("tasks", "add", "Write docs", "-d", "the docs", "--id", "t-cli", url=url)
    )
    assert (task.id, task.description, task.status) == ("t-cli", "the docs", "pending")
    refused(cli("tasks", "add", "again", "--id", "t-cli", url=url), 1, "exists already")
    page = TaskPage.model_validate(ok_json("tasks", "ls", url=url))
    assert [t.id for t in page.items] == ["t-cli"]
    assert ok_json("tasks", "show", "t-cli", url=url)["queue"] == []
    assert "t-cli" in cli("tasks", "ls", url=url).stdout
    queued = ok_json("tasks", "add", "Queued at once", "--repo", "app", "--repo", "lib", "--queue", url=url)
    assert queued["task"]["repos"] == ["app", "lib"] and queued["queued"]["task_id"] == queued["task"]["id"]

    refused(cli("agents", "show", "coding-00000000", url=url), 1, "agent 'coding-00000000' not found")
    assert cli("agents", "spawn", "wizard", "hi", url=url).returncode == 2
    assert cli("agents", url=url).returncode == 2  # a group without a command: its help, as a usage error

    created = server.client.post(
        "/api/events", json={"id": "evt-cli", "type": "audit.requested", "task_id": "t-cli"}
    )
    assert created.status_code == 201, created.text
    assert [e["id"] for e in ok_json("events", "ls", "--task", "t-cli", url=url)["items"]] == ["evt-cli"]
    assert ok_json("events", "ls", "--pending", url=url)["total"] == 1
    assert "evt-cli" in cli("events", "ls", url=url).stdout
    assert ok_json("events", "show", "evt-cli", url=url)["type"] == "audit.requested"
    refused(cli("events", "show", "evt-nope", url=url), 1, "not found")

    github = cli("github", "status", url=url)
    assert github.returncode == 1 and "not configured" in github.stdout
    github_json = cli("github", "status", "--json", url=url)
    assert github_json.returncode == 1 and json.loads(github_json.stdout)["configured"] is False

    assert ok_json("tasks", "rm", "t-cli", url=url) == {"id": "t-cli", "deleted": True}


def test_queue_pause_resume_and_settings(server: Server) -> None:
    url = server
    assert server.client.post("/api/tasks", json={"id": "t-q", "title": "waits"}).status_code == 201
    assert ok_json("queue", "pause", url=url)["paused"] is True
    assert server.client.get("/api/queue/settings").json()["paused"] is True
    assert ok_json("queue", "add", "t-q", url=url)["task_id"] == "t-q"
    refused(cli("queue", "add", "t-q", url=url), 1, "already")
    status = QueueStatus.model_validate(ok_json("--json", "queue", "ls", url=url))
    assert status.queued == 1 and status.settings.paused
    listed = cli("queue", "ls", url=url)
    assert listed.returncode == 0 and "paused" in listed.stdout and "t-q" in listed.stdout
    assert ok_json("queue", "set", "max_concurrent", "4", url=url)["max_concurrent"] == 4
    refused(cli("queue", "set", "colour", "blue", url=url), 1, "unknown setting 'colour'")
    assert ok_json("queue", "rm", "t-q", url=url)["items"] == []
    refused(cli("queue", "rm", "t-q", url=url), 1, "t-q")
    assert ok_json("queue", "resume", url=url)["paused"] is False
    assert server.client.get("/api/queue/settings").json()["paused"] is False
    assert ok_json("queue", "clear", url=url) == {"removed": 0}


def test_unreachable_server_and_bad_url() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    refused(cli("agents", "ls", url=nowhere), 3, "cannot reach the orchestrator")
    refused(cli("--url", nowhere, "queue", "pause", url="http://127.0.0.1:1"), 3, nowhere)
    assert cli("--url", "not-a-url", "health", url=nowhere).returncode == 2


def test_token_from_flag_or_environment(make_server: ServerFactory) -> None:
    server = make_server(ORCHESTRATOR_API_TOKEN="cli-token")
    refused(cli("agents", "ls", url=server), 1, "API token")
    assert ok_json("--token", "cli-token", "agents", "ls", url=server)["total"] == 0
    assert ok_json("queue", "ls", url=server, ORCHESTRATOR_API_TOKEN="cli-token")["queued"] == 0


def test_the_newcomer_path_needs_no_token(make_server: ServerFactory, tmp_path: Path) -> None:
    """`orchestrator serve` with every default, then the CLI as it comes: no --token, no variable."""
    home = tmp_path / "home"
    server = make_server(data_dir=home / ".local" / "share" / "orchestrator", HOME=str(home))
    env = {"HOME": str(home)}
    assert ok_json("queue", "ls", url=server.url, **env)["queued"] == 0
    assert ok_json("health", url=server.url, **env)["instance_id"], "the details need the token: it was sent"
    assert ok_json("tasks", "add", "from the CLI", url=server.url, **env)["status"] == "pending"
    other = tmp_path / "other-home"
    refused(cli("queue", "ls", url=server.url, HOME=str(other)), 1, "API token")


def test_agents_follow_renders_tool_calls_and_exits_by_outcome(
    server: Server, fake_model: fm.FakeAnthropic
) -> None:
    url = server
    marker = fake_model.scenario(
        [
            fm.tool(
                "Bash",
                {"command": "echo hello-from-cli", "description": "greet"},
                text="Saying hello.",
                delay=0.5,
            ),
            fm.text("Said hello.", delay=0.3),
        ]
    )
    agent = AgentDetail.model_validate(ok_json("agents", "spawn", "coding", f"greet {marker}", url=url))
    followed = cli("agents", "logs", "-f", agent.id, url=url)
    assert followed.returncode == 0, followed.stderr
    out = followed.stdout
    assert "Saying hello." in out
    assert "▶ Bash: echo hello-from-cli" in out
    assert "◀ result: hello-from-cli" in out
    assert "■ success (2 turns" in out and "Said hello." in out
    assert f"agent {agent.id} completed (exit 0" in out
    assert '"type"' not in out, "stream-json shown raw"

    stored = server.logs(agent.id)
    page = LogPage.model_validate(ok_json("agents", "logs", agent.id, url=url))
    assert [i.id for i in page.items] == [line["id"] for line in stored] and page.status == "completed"
    raw = cli("agents", "logs", agent.id, "--raw", url=url).stdout
    assert raw.count("\n") == len(stored) and '"type":"system"' in raw
    events = [
        json.loads(line)
        for line in cli("agents", "logs", "-f", "--json", agent.id, url=url).stdout.splitlines()
    ]
    assert [e["event"] for e in events] == ["log"] * len(stored) + ["end"]
    assert events[-1]["agent"]["status"] == "completed"

    listed = AgentPage.model_validate(ok_json("agents", "ls", "--status", "completed", url=url))
    assert [a.id for a in listed.items] == [agent.id]
    assert agent.id in cli("agents", "ls", url=url).stdout
    assert ok_json("agents", "show", agent.id, url=url)["metadata"]["result"] == "Said hello."
    assert ok_json("agents", "stats", url=url)["by_status"] == {"completed": 1}
    refused(cli("agents", "kill", agent.id, url=url), 1, "already ended")

    again = AgentDetail.model_validate(ok_json("agents", "retry", agent.id, url=url))
    assert again.retry_of == agent.id
    assert cli("agents", "logs", "-f", again.id, url=url).returncode == 0

    hung = server.spawn(f"hang {fake_model.scenario([fm.stall(60)])}")
    assert ok_json("agents", "kill", hung["id"], url=url)["id"] == hung["id"]
    killed = cli("agents", "logs", "-f", hung["id"], url=url)
    assert killed.returncode == 1 and f"agent {hung['id']} killed" in killed.stdout

    bad = fake_model.scenario([fm.error(500, "model down")])
    failed = cli("agents", "spawn", "coding", f"fail {bad}", "-f", url=url)
    assert failed.returncode == 1
    assert "failed (exit" in failed.stdout and "model down" in failed.stdout


def test_logs_colour_stdout_and_stderr_apart(make_server: ServerFactory, tmp_path: Path) -> None:
    script = tmp_path / "claude"
    script.write_text("#!/bin/sh\necho 'plain on stdout'\necho 'boom on stderr' >&2\nexit 3\n")
    script.chmod(0o755)
    server = make_server(CLAUDE_BIN=str(script))
    agent_id = server.spawn("anything")["id"]
    server.wait_agent(agent_id)
    coloured = cli("agents", "logs", agent_id, url=server, FORCE_COLOR="1", TERM="xterm")
    assert coloured.returncode == 0
    lines = {line for line in coloured.stdout.splitlines() if "on std" in line}
    assert "plain on stdout" in lines
    assert any("boom on stderr" in line and "\x1b[31m" in line for line in lines), lines


def test_doctor(server: Server, tmp_path: Path) -> None:
    env = {"ORCHESTRATOR_DATA_DIR": str(tmp_path / "data"), "CLAUDE_BIN": claude_bin()}
    report = ok_json("doctor", url=server, **env)
    states = {c["name"]: c["state"] for c in report["checks"]}
    assert report["ok"] is True
    assert states == {
        "settings": "ok",
        "claude": "ok",
        "database": "ok",
        "runtime": "ok",
        "sandbox": "ok",
        "github": "warn",
        "server": "ok",
    }
    # a check changes nothing: the database a service would create is not created by doctor
    assert not (tmp_path / "data" / "orchestrator.db").exists()
    github = next(c for c in report["checks"] if c["name"] == "github")
    assert "not configured" in github["detail"]

    human = cli(
        "doctor", url=f"http://127.0.0.1:{free_port()}", **{**env, "CLAUDE_BIN": str(tmp_path / "nope")}
    )
    assert human.returncode == 1
    assert "✗ claude" in human.stdout and "orchestrator install-claude" in human.stdout
    assert "! server" in human.stdout and "orchestrator serve" in human.stdout

    wrong = cli("doctor", "--json", url=server, **env, PORT="not-a-port")
    assert wrong.returncode == 1
    settings = json.loads(wrong.stdout)["checks"][0]
    assert settings["state"] == "fail" and "PORT" in settings["detail"]


def test_doctor_reads_the_service_database_and_checks_the_token_and_the_engine(
    server: Server, github: FakeGitHub, tmp_path: Path
) -> None:
    env = {"ORCHESTRATOR_DATA_DIR": str(server.data_dir), "CLAUDE_BIN": claude_bin()}
    database = server.data_dir / "orchestrator.db"
    before = database.stat().st_mtime_ns
    found = {c["name"]: c for c in json.loads(cli("doctor", "--json", url=server, **env).stdout)["checks"]}
    assert found["database"]["state"] == "ok" and "schema at 0" in found["database"]["detail"], found
    assert database.stat().st_mtime_ns == before

    token = {"GITHUB_TOKEN": github.token, "GITHUB_API_URL": github.api_url, "GITHUB_OWNER": "acme"}
    found = {
        c["name"]: c for c in json.loads(cli("doctor", "--json", url=server, **env, **token).stdout)["checks"]
    }
    assert found["github"]["state"] == "ok", found["github"]
    wrong = {**token, "GITHUB_TOKEN": "ghp_" + "x" * 36}
    answer = cli("doctor", "--json", url=server, **env, **wrong)
    found = {c["name"]: c for c in json.loads(answer.stdout)["checks"]}
    assert answer.returncode == 1 and found["github"]["state"] == "fail", found["github"]
    assert wrong["GITHUB_TOKEN"] not in answer.stdout + answer.stderr

    engine = {"AGENT_RUNTIME": "docker", "DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}"}
    answer = cli("doctor", "--json", url=server, **env, **engine)
    found = {c["name"]: c for c in json.loads(answer.stdout)["checks"]}
    assert answer.returncode == 1 and found["runtime"]["state"] == "fail", found["runtime"]
    assert "no-docker.sock" in found["runtime"]["detail"]
