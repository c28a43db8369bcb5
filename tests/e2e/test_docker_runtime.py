"""Agents as Docker containers (AGENT_RUNTIME=docker) on a real engine, through the real server.

The image is `orchestrator-agent:test`, which scripts/ci-docker assembles from this host's files (the
pinned claude binary, busybox, bash, git) without any registry. Fake CLI scripts are bind-mounted into
the container (AGENT_MOUNT_CLAUDE=1); the real CLI is the image's own `claude`."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtimes.ownership import agent_user
from tests.support import fake_anthropic as fm
from tests.support.runtimes import agent_containers, fake_cli, remove_containers, require_docker
from tests.support.server import Server, stream_json_lines, write_db

pytestmark = pytest.mark.xdist_group("docker")


@pytest.fixture
def docker_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {"AGENT_RUNTIME": "docker", "AGENT_IMAGE": require_docker()}
    for run_dir in tmp_path.glob("data*/runs/*"):  # whatever a failed test left behind
        remove_containers(run_dir.name)


def _stdout(server: Server, agent_id: str) -> list[str]:
    return [ln["content"] for ln in server.logs(agent_id) if ln["stream"] == "stdout"]


def _wait_stdout(server: Server, agent_id: str, n: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(lines := _stdout(server, agent_id)) < n:
        assert time.monotonic() < deadline, f"{len(lines)} lines after {timeout} s\n{server.log()}"
        time.sleep(0.05)
    return lines


def _tool_results(logs: list[dict[str, Any]]) -> str:
    return " ".join(
        str(b.get("content"))
        for o in stream_json_lines(logs)
        if o["type"] == "user"
        for b in o["message"]["content"]
        if isinstance(b, dict) and b.get("type") == "tool_result"
    )


def test_real_claude_in_a_container_streams_live_and_completes(  # type: ignore[no-untyped-def]
    make_server, fake_model: fm.FakeAnthropic, docker_env: dict[str, str]
) -> None:
    marker = fake_model.scenario(
        [
            fm.tools(
                [
                    ("Write", {"file_path": "{{cwd}}/hello.txt", "content": "from a container\n"}),
                    (
                        "Bash",
                        {"command": "tr '\\0' ' ' < /proc/1/cmdline; echo; echo BASH_OK", "description": "p"},
                    ),
                ]
            ),
            fm.text("Contained and done.", delay=1.5),
        ]
    )
    server = make_server(**docker_env)
    agent = server.spawn(f"write hello {marker}")
    assert agent["container_id"].startswith("docker-")

    first = _wait_stdout(server, agent["id"], 1, timeout=60)
    assert server.agent(agent["id"])["status"] == "running", "a line arrived while the agent still ran"
    assert first[0].startswith('{"type":"system"')

    done = server.wait_agent(agent["id"], timeout=90)
    assert done["status"] == "completed", done
    assert done["exit_code"] == 0
    assert done["metadata"]["result"] == "Contained and done."
    assert (Path(done["workspace"]) / "hello.txt").read_text() == "from a container\n"
    results = _tool_results(server.logs(agent["id"]))
    assert "BASH_OK" in results
    assert "/bin/sh -c" in results  # PID 1 is the runtime's wrapper: the Bash tool ran in the container
    assert agent_containers(agent["id"]) == [], "the container is removed once the end is recorded"


PROBE = r"""
echo "uid=$(id -u) gid=$(id -g)"
for f in /usr/local/bin/x /etc/x /x; do
  if echo x > "$f" 2>/dev/null; then echo "wrote $f"; else echo "refused $f"; fi
done
grep -E '^(CapPrm|CapEff|CapBnd|NoNewPrivs):' /proc/self/status
lnk() { ln -s "$@" 2>/dev/null || busybox ln -s "$@" 2>/dev/null; }  # the test image has no ln applet
run=$(dirname "$HOME")
if lnk /proc/1/environ "$run/planted"; then echo "planted a link"; else echo "refused link"; fi
if rm -f "$run/stdout" 2>/dev/null && lnk /proc/1/environ "$run/stdout"; then
  echo "replaced stdout"; else echo "refused stdout"; fi
echo in-tmp > /tmp/t && cat /tmp/t
echo from-uid-1000 > ws.txt && echo "wrote workspace as $(stat -c %u:%g ws.txt)"
""".strip()


def test_agent_in_a_container_is_not_root_and_writes_only_its_own_paths(  # type: ignore[no-untyped-def]
    make_server, fake_model: fm.FakeAnthropic, docker_env: dict[str, str]
) -> None:
    """The real claude, made hostile: its Bash tool tries to write the image, to gain privileges and to
    plant links in its run directory, which the service reads."""
    marker = fake_model.scenario(
        [fm.tool("Bash", {"command": PROBE, "description": "probe"}), fm.text("Probed.")]
    )
    server = make_server(**docker_env)
    done = server.wait_agent(server.spawn(f"probe {marker}")["id"], timeout=90)
    assert done["status"] == "completed", done
    results = _tool_results(server.logs(done["id"]))
    user = agent_user(None, os.geteuid(), os.getegid())  # 1000:1000 for a root service, as here
    assert f"uid={user.uid} gid={user.gid}" in results and "uid=0" not in results
    for path in ("/usr/local/bin/x", "/etc/x", "/x"):
        assert f"refused {path}" in results and f"wrote {path}" not in results
    caps = dict(line.split(":\t") for line in results.split("\n") if line.startswith(("Cap", "NoNew")))
    assert caps == {
        "CapPrm": "0000000000000000",
        "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000",
        "NoNewPrivs": "1",
    }, results
    assert "refused link" in results and "refused stdout" in results
    assert "in-tmp" in results and f"wrote workspace as {user}" in results

    run_dir = server.data_dir / "runs" / done["id"]
    assert not (run_dir / "planted").exists()
    assert not (run_dir / "stdout").is_symlink() and (run_dir / "stdout").stat().st_size > 0
    workspace = Path(done["workspace"])
    written = workspace / "ws.txt"
    assert written.read_text() == "from-uid-1000\n"
    # the run over, the service (root here) has its workspace back: its own git works in it again
    assert (written.stat().st_uid, written.stat().st_gid) == (os.geteuid(), os.getegid())
    status = subprocess.run(
        ["git", "-C", str(workspace), "status", "--porcelain"], capture_output=True, text=True, check=False
    )
    assert status.returncode == 0 and "ws.txt" in status.stdout, status.stderr


def test_agent_user_unknown_to_the_image_still_works(  # type: ignore[no-untyped-def]
    make_server, fake_model: fm.FakeAnthropic, docker_env: dict[str, str]
) -> None:
    """AGENT_CONTAINER_USER defaults to the service's own uid when it is not root: an image knows no such
    user. The real claude and git must cope."""
    marker = fake_model.scenario(
        [
            fm.tool(
                "Bash",
                {
                    "command": "id -u; echo hi > f; git add f && git commit -qm c && echo COMMITTED",
                    "description": "commit",
                },
            ),
            fm.text("Committed."),
        ]
    )
    server = make_server(AGENT_CONTAINER_USER="4242:4243", **docker_env)
    done = server.wait_agent(server.spawn(f"commit {marker}")["id"], timeout=90)
    assert done["status"] == "completed", done
    results = _tool_results(server.logs(done["id"]))
    assert "4242" in results and "COMMITTED" in results, results


def test_container_limits_are_enforced_and_kill_ends_it(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, docker_env: dict[str, str]
) -> None:
    probe = "\n".join(
        [
            "cg=/sys/fs/cgroup",
            'echo "mem=$(cat $cg/memory/memory.limit_in_bytes 2>/dev/null || cat $cg/memory.max)"',
            'echo "pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"',
            "( for i in $(seq 1 100); do sleep 30 & done ) 2>/dev/null",
            "read n < /sys/fs/cgroup/pids/pids.current 2>/dev/null || read n < /sys/fs/cgroup/pids.current",
            "echo forked=$n",
            "trap 'echo got-term; exit 143' TERM",
            "sleep 300 &",
            "wait",
        ]
    )
    script = fake_cli(tmp_path, probe)
    server = make_server(
        CLAUDE_BIN=str(script), AGENT_MOUNT_CLAUDE="1", AGENT_MEMORY_MB="96", AGENT_PIDS="32", **docker_env
    )
    agent = server.spawn("probe limits, then wait")
    lines = _wait_stdout(server, agent["id"], 3)
    values = dict(line.split("=", 1) for line in lines)
    assert values["mem"] == str(96 * 1024 * 1024)
    assert values["pids"] == "32"
    assert int(values["forked"]) <= 32

    started = time.monotonic()
    response = server.client.post(f"/api/agents/{agent['id']}/kill")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "killed"
    assert time.monotonic() - started < 2.5, "SIGTERM reached the agent through the container's PID 1"
    assert "got-term" in _stdout(server, agent["id"])
    assert agent_containers(agent["id"]) == []


def _crash_while_counting(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, docker_env: dict[str, str]
) -> tuple[Server, dict[str, Any], dict[str, str]]:
    """A service crashed while its container agent counts slowly to 10: the container outlives it."""
    script = fake_cli(tmp_path, "for i in $(seq 1 10); do echo line-$i; sleep 0.25; done")
    env = {"CLAUDE_BIN": str(script), "AGENT_MOUNT_CLAUDE": "1", **docker_env}
    first = make_server(kill_agents_on_shutdown=False, **env)
    agent = first.spawn("count slowly")
    _wait_stdout(first, agent["id"], 2)
    first.crash()
    assert agent_containers(agent["id"]), "the container outlives the service"
    return first, agent, env


def test_container_agent_is_adopted_after_a_crash_of_the_service(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, docker_env: dict[str, str]
) -> None:
    first, agent, env = _crash_while_counting(make_server, tmp_path, docker_env)
    second = make_server(data_dir=first.data_dir, **env)
    done = second.wait_agent(agent["id"], timeout=30)
    assert done["status"] == "completed", done
    assert done["exit_code"] == 0
    stored = _stdout(second, agent["id"])
    assert stored[:-1] == [f"line-{i}" for i in range(1, 11)]
    assert stored == (first.data_dir / "runs" / agent["id"] / "stdout").read_text().splitlines()
    assert "adopted agent" in second.log()
    assert agent_containers(agent["id"]) == []


def test_a_container_the_store_never_heard_of_is_found_by_its_label_and_adopted(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, docker_env: dict[str, str]
) -> None:
    first, agent, env = _crash_while_counting(make_server, tmp_path, docker_env)
    # what a crash between the container's start and its record in the store leaves behind
    write_db(
        first,
        f"UPDATE agents SET status = 'starting', container_id = NULL, pid = NULL WHERE id = '{agent['id']}'",
    )

    second = make_server(data_dir=first.data_dir, **env)
    done = second.wait_agent(agent["id"], timeout=30)
    assert (done["status"], done["end_reason"]) == ("completed", "completed"), done
    assert done["container_id"], "the container found by its label is recorded"
    stored = _stdout(second, agent["id"])
    assert stored == (first.data_dir / "runs" / agent["id"] / "stdout").read_text().splitlines()
    assert agent_containers(agent["id"]) == []
