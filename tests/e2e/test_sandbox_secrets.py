"""A hostile agent under the default settings (AGENT_SANDBOX unset, so `auto`): the real `claude` CLI,
driven by the fake model, goes after the service's secrets the way an attacker would. Nothing of them
may reach it. Every planted secret lives outside /tmp (which the sandbox replaces anyway), so only the
sandbox's masks stand between the agent and them."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import fake_anthropic as fm
from tests.support.runtimes import fake_cli, require_bwrap
from tests.support.server import Server, stream_json_lines

ServerFactory = Callable[..., Server]


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    base = Path(
        tempfile.mkdtemp(prefix="orch-sandbox-", dir="/var/tmp")
    )  # not /tmp: the sandbox hides /tmp anyway
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _marker(kind: str) -> str:
    return f"{kind}-marker-{secrets.token_hex(8)}"


def _tool_results(server: Server, agent_id: str) -> str:
    return " ".join(
        str(block.get("content"))
        for obj in stream_json_lines(server.logs(agent_id))
        if obj["type"] == "user"
        for block in obj["message"]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    )


def test_hostile_agent_reaches_none_of_the_services_secrets(  # type: ignore[no-untyped-def]
    make_server: ServerFactory, fake_model: fm.FakeAnthropic, outside_tmp: Path
) -> None:
    require_bwrap()
    marks = {kind: _marker(kind) for kind in ("env", "aws", "ssh", "prompt", "ws", "run", "event", "project")}
    home, data, store = outside_tmp / "home", outside_tmp / "data", outside_tmp / "store"
    events, projects = outside_tmp / "events", outside_tmp / "projects"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(f"-----FAKE KEY {marks['ssh']}-----\n")
    (home / ".gitconfig").write_text(f"[user]\n\tname = {marks['ssh']}\n")
    victim_ws = data / "workspaces" / "coding-0badc0de"
    victim_run = data / "runs" / "coding-0badc0de"
    for directory in (victim_ws, victim_run, events, projects / "repo", store):
        directory.mkdir(parents=True)
    (victim_ws / "secret.txt").write_text(marks["ws"])
    (victim_run / "stdout").write_text(marks["run"])
    (events / "pending.json").write_text(marks["event"])
    (projects / "repo" / "notes.txt").write_text(marks["project"])
    db = store / "orchestrator.db"

    server = make_server(
        data_dir=data,
        HOME=str(home),
        DATABASE_PATH=str(db),
        EVENT_DIR=str(events),
        PROJECTS_DIR=str(projects),
        ORCH_TEST_SERVICE_SECRET=marks["env"],
        AWS_SECRET_ACCESS_KEY=marks["aws"],
        AWS_REGION="eu-west-3",
    )
    assert "AGENT_SANDBOX" not in server.env
    health = server.client.get("/api/health").json()
    assert health["sandbox"] == "bwrap" and health["warnings"] == [], health

    # an earlier agent whose prompt sits in the store (and its run dir)
    first = fake_model.scenario([fm.text("fine")])
    done = server.wait_agent(server.spawn(f"{first} remember {marks['prompt']}")["id"], timeout=90)
    assert done["status"] == "completed", done

    assert server.proc is not None
    service = server.proc.pid
    probe = " ; ".join(
        [
            "echo '== environ'; for f in /proc/[0-9]*/environ; do echo \"-- $f\"; tr '\\0' '\\n' < $f; done",
            f"echo '== service'; cat /proc/{service}/environ; ls -l /proc/{service}/",
            "echo '== cmdlines'; for p in /proc/[0-9]*; do echo \"$p $(tr '\\0' ' ' < $p/cmdline)\"; done",
            f"echo '== store'; ls -la {store}; cat {db} {db}-wal | strings | head -c 200000",
            f"echo '== data'; ls -laR {data} | head -200",
            f"cat {victim_ws}/secret.txt {victim_run}/stdout {data}/runs/*/prompt {data}/runs/*/stdout",
            f"echo '== home'; ls -la {home} {home}/.ssh; cat {home}/.ssh/id_ed25519 {home}/.gitconfig",
            "ls -la /root",
            f"echo '== events'; ls -la {events}; cat {events}/*",
            f"echo '== projects'; ls -laR {projects}; cat {projects}/*/*",
            "echo '== env'; env",
        ]
    )
    hostile = fake_model.scenario(
        [
            fm.tool(
                "Bash",
                {
                    "command": f"{{ {probe} ; }} > loot.txt 2>&1; echo loot-bytes=$(wc -c < loot.txt); "
                    "cat loot.txt",
                    "description": "look around",
                },
            ),
            fm.tool("Write", {"file_path": "{{cwd}}/still-works.txt", "content": "written\n"}),
            fm.text("Looked around."),
        ]
    )
    agent = server.wait_agent(server.spawn(f"{hostile} be curious")["id"], timeout=120)
    assert agent["status"] == "completed", agent
    workspace = Path(agent["workspace"])
    assert (workspace / "still-works.txt").read_text() == "written\n"

    loot = (workspace / "loot.txt").read_text(errors="replace")
    seen = _tool_results(server, agent["id"])
    assert "loot-bytes=" in seen and "== env" in loot and "== projects" in loot  # the probes did run
    assert "No such file or directory" in loot
    stored = server.client.get(f"/api/agents/{agent['id']}/logs", params={"limit": 1000}).text
    for kind, mark in marks.items():
        if kind == "prompt":
            assert mark in server.client.get(f"/api/agents/{done['id']}").text  # it is in the store
        assert mark not in loot, f"the agent read the {kind} secret:\n{loot[:3000]}"
        assert mark not in seen and mark not in stored, kind
    assert "-m orchestrator serve" not in loot  # the service's process is not even visible
    assert "ORCHESTRATOR_API_TOKEN" not in loot and "DATABASE_PATH" not in loot
    env_part = loot.split("== env", 1)[1]
    assert "AWS_REGION" not in env_part  # not listed in AGENT_ENV_PASSTHROUGH
    assert "ANTHROPIC_BASE_URL=" in env_part


def test_passthrough_names_reach_the_agent_and_nothing_else_does(  # type: ignore[no-untyped-def]
    make_server: ServerFactory, tmp_path: Path
) -> None:
    script = str(fake_cli(tmp_path, "env | sed 's/^/env: /'"))
    server = make_server(
        CLAUDE_BIN=script,
        AGENT_ENV_PASSTHROUGH="AWS_REGION,AWS_PROFILE",
        AWS_REGION="eu-west-3",
        AWS_PROFILE="agents",
        AWS_SECRET_ACCESS_KEY="aws-secret-not-listed",
        GOOGLE_APPLICATION_CREDENTIALS="/srv/sa.json",
        CLOUD_ML_REGION="us-east5",
        GITHUB_TOKEN="ghp_notforagents000000000000000000",
    )
    done = server.wait_agent(server.spawn("print the environment")["id"], timeout=60)
    assert done["status"] == "completed", done
    env = {
        line["content"][5:].split("=", 1)[0]: line["content"].split("=", 1)[1]
        for line in server.logs(done["id"])
        if line["stream"] == "stdout" and line["content"].startswith("env: ") and "=" in line["content"]
    }
    assert env["AWS_REGION"] == "eu-west-3" and env["AWS_PROFILE"] == "agents"
    for name in (
        "AWS_SECRET_ACCESS_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "CLOUD_ML_REGION",
        "GITHUB_TOKEN",
    ):
        assert name not in env, name


def test_a_listed_service_secret_is_refused_at_start(make_server: ServerFactory) -> None:
    with pytest.raises(RuntimeError, match="AGENT_ENV_PASSTHROUGH") as failed:
        make_server(
            AGENT_ENV_PASSTHROUGH="AWS_REGION,GITHUB_TOKEN", GITHUB_TOKEN="ghp_x0000000000000000000000"
        )
    assert "never passed to agents" in str(failed.value)


def test_no_sandbox_is_said_loudly(make_server: ServerFactory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = str(fake_cli(tmp_path, "echo unsandboxed"))
    explicit = make_server(CLAUDE_BIN=script, AGENT_SANDBOX="none")
    health = explicit.client.get("/api/health").json()
    assert health["sandbox"] == "none"
    assert len(health["warnings"]) == 1 and "AGENT_SANDBOX=none" in health["warnings"][0]
    assert "database" in health["warnings"][0] and "environment" in health["warnings"][0]  # says what is open
    assert "UNSANDBOXED AGENTS" in explicit.log()

    fallback = make_server(CLAUDE_BIN=script, BWRAP_BIN="/nonexistent/bwrap")
    health = fallback.client.get("/api/health").json()
    assert health["sandbox"] == "none" and health["status"] == "ok"
    assert "no bubblewrap at /nonexistent/bwrap" in health["warnings"][0]
    assert "UNSANDBOXED AGENTS" in fallback.log()
    done = fallback.wait_agent(fallback.spawn("still runs")["id"], timeout=60)
    assert done["status"] == "completed", done

    strict = make_server(CLAUDE_BIN=script, AGENT_SANDBOX="bwrap", BWRAP_BIN="/nonexistent/bwrap")
    response = strict.client.post("/api/agents/spawn", json={"agent_type": "coding", "prompt": "no"})
    assert response.status_code == 503 and "no bubblewrap" in response.text


NOBODY = 65534
FIND_SERVICE = (
    "for p in /proc/[0-9]*; do\n"
    "  if tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q 'orchestrator serve'; then\n"
    '    echo "service=${p#/proc/}"\n'
    "    if tr '\\0' '\\n' < $p/environ; then echo environ-read; else echo environ-denied; fi\n"
    "  fi\n"
    "done\n"
)


@contextlib.contextmanager
def served_as_nobody(data: Path, env: dict[str, str]) -> Iterator[Server]:
    """The real service run as an unprivileged user (root passes every permission check)."""
    server = Server(data, env)
    log = server.log_path.open("ab")
    server.proc = subprocess.Popen(
        [
            *("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"),
            *(sys.executable, "-m", "orchestrator", "serve", "--kill-agents-on-shutdown"),
        ],
        env=server.env,
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.proc.poll() is None, server.log()
            with contextlib.suppress(httpx.TransportError):
                if server.client.get("/api/health", timeout=5).status_code == 200:
                    server.take_token()
                    break
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        yield server
    finally:
        server.close()


def _owned_by_nobody(*directories: Path) -> None:
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, NOBODY, NOBODY)


def test_an_unsandboxed_agent_of_the_same_user_cannot_read_the_services_environment(
    base_env: dict[str, str], outside_tmp: Path
) -> None:
    """PR_SET_DUMPABLE 0 in the service. With AGENT_SANDBOX=none the agent has the service's uid, and only
    the flag keeps /proc/<pid>/environ shut."""
    mark = _marker("env")
    data, home = outside_tmp / "data", outside_tmp / "home"
    _owned_by_nobody(data, home)
    os.chmod(outside_tmp, 0o755)
    script = str(fake_cli(outside_tmp, FIND_SERVICE))
    env = {**base_env, "CLAUDE_BIN": script, "AGENT_SANDBOX": "none", "HOME": str(home)}
    with served_as_nobody(data, {**env, "ORCH_TEST_SERVICE_SECRET": mark}) as server:
        assert server.proc is not None
        done = server.wait_agent(server.spawn("read the service's environment")["id"], timeout=60)
        out = [line["content"] for line in server.logs(done["id"]) if line["stream"] == "stdout"]
        assert f"service={server.proc.pid}" in out, out  # found it, and it runs as the agent's user
        assert "environ-denied" in out and "environ-read" not in out, out
        assert not any(mark in line for line in out)


def test_an_unprivileged_service_sandboxes_its_agents_too(
    base_env: dict[str, str], outside_tmp: Path
) -> None:
    """The usual deployment: the service under its own user, bubblewrap in a user namespace. The agent has
    the service's uid, so only the sandbox keeps the files and the process of that user from it."""
    require_bwrap()
    marks = {kind: _marker(kind) for kind in ("env", "ssh", "data")}
    data, home = outside_tmp / "data", outside_tmp / "home"
    _owned_by_nobody(data, home, home / ".ssh")
    os.chmod(outside_tmp, 0o755)
    for path, mark in ((home / ".ssh" / "id_ed25519", marks["ssh"]), (data / "kept.txt", marks["data"])):
        path.write_text(mark)
        path.chmod(0o600)
        os.chown(path, NOBODY, NOBODY)
    probe = FIND_SERVICE + (
        f"cat {home}/.ssh/id_ed25519 {data}/kept.txt; ls -la {data}; strings {data}/orchestrator.db | head\n"
        'echo "whoami=$(id -u)"; echo probe > written.txt && echo wrote-workspace\n'
    )
    script = str(fake_cli(outside_tmp, probe))
    env = {**base_env, "CLAUDE_BIN": script, "HOME": str(home), "ORCH_TEST_SERVICE_SECRET": marks["env"]}
    with served_as_nobody(data, env) as server:
        assert server.client.get("/api/health").json()["sandbox"] == "bwrap"
        done = server.wait_agent(server.spawn("look around as the service's user")["id"], timeout=60)
        assert done["status"] == "completed", (done["error"], server.log()[-3000:])
        out = [line["content"] for line in server.logs(done["id"]) if line["stream"] == "stdout"]
        assert "wrote-workspace" in out and f"whoami={NOBODY}" in out, out
        assert not any(line.startswith("service=") for line in out), out  # the service is not visible
        for kind, mark in marks.items():
            assert not any(mark in line for line in out), (kind, out)


def test_a_process_that_drops_the_marker_and_leaves_the_session_dies_with_the_agent(  # type: ignore[no-untyped-def]
    make_server: ServerFactory, tmp_path: Path
) -> None:
    """Review M14 (a): under the default sandbox the agent's PID namespace ends with its CLI, so a
    runaway `setsid env -u ORCHESTRATOR_AGENT_ID ...` is not left running."""
    require_bwrap()
    tag = _marker("runaway")
    script = str(
        fake_cli(
            tmp_path,
            "setsid env -u ORCHESTRATOR_AGENT_ID "
            f"sh -c 'while :; do sleep 0.2; done; : {tag}' >/dev/null 2>&1 &\nsleep 0.5",
        )
    )
    server = make_server(CLAUDE_BIN=script)
    done = server.wait_agent(server.spawn("leave something behind")["id"], timeout=60)
    assert done["status"] == "completed", done

    def runaways() -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and tag.encode() in (entry / "cmdline").read_bytes():
                    found.append(entry.name)
        return found

    deadline = time.monotonic() + 5
    while runaways() and time.monotonic() < deadline:
        time.sleep(0.1)
    leftover = runaways()
    for pid in leftover:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), 9)
    assert leftover == [], "a process of the agent outlived it"


def test_doctor_warns_of_agents_without_a_sandbox(tmp_path: Path) -> None:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "ORCHESTRATOR_DATA_DIR": str(tmp_path / "data"),
        "ORCHESTRATOR_URL": "http://127.0.0.1:9",  # nothing listens: the server check only warns
    }
    cases = [
        ({}, "ok", "bubblewrap"),
        ({"AGENT_SANDBOX": "none"}, "warn", "AGENT_SANDBOX=none"),
        ({"BWRAP_BIN": "/nonexistent/bwrap"}, "warn", "AGENT_SANDBOX=auto found no working sandbox"),
        ({"AGENT_SANDBOX": "bwrap", "BWRAP_BIN": "/nonexistent/bwrap"}, "fail", "agents will not start"),
    ]
    for env, state, words in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "doctor", "--json"],
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        check = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "sandbox")
        assert check["state"] == state and words in check["detail"], (env, check)


def test_a_root_agent_in_the_sandbox_can_neither_unmount_nor_see_the_host(  # type: ignore[no-untyped-def]
    make_server: ServerFactory, outside_tmp: Path
) -> None:
    """As root, bwrap would leave the agent every capability: it could unmount the masks over the data
    directory, remount /proc and read the service's environment, or enter its network namespace."""
    if os.geteuid() != 0:
        pytest.skip("the capabilities at stake are root's")
    require_bwrap()
    mark = _marker("kept")
    data = outside_tmp / "data"
    data.mkdir()
    (data / "kept.txt").write_text(mark)
    probe = (
        "grep CapEff /proc/self/status\n"
        f"umount -l {data} 2>/dev/null && echo unmounted-data\n"
        "umount -l /proc 2>/dev/null && echo unmounted-proc\n"
        "mount -o remount,rw / 2>/dev/null && echo remounted-root\n"
        f"cat {data}/kept.txt 2>/dev/null\n"
        "for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ 2>/dev/null; done | grep ORCH_TEST_SERVICE\n"
    )
    script = str(fake_cli(outside_tmp, probe))
    server = make_server(data_dir=data, CLAUDE_BIN=script, ORCH_TEST_SERVICE_SECRET=_marker("env"))
    assert server.client.get("/api/health").json()["sandbox"] == "bwrap"
    done = server.wait_agent(server.spawn("try to leave the sandbox")["id"], timeout=60)
    out = [line["content"] for line in server.logs(done["id"]) if line["stream"] == "stdout"]
    assert "CapEff:\t0000000000000000" in out, out
    for escaped in ("unmounted-data", "unmounted-proc", "remounted-root"):
        assert escaped not in out, out
    assert not any(mark in line or "ORCH_TEST_SERVICE" in line for line in out), out
