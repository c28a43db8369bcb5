"""A kill landing while the Docker engine creates an agent's container (AGENT_RUNTIME=docker, real engine,
real server): the start runs in a thread the kill cannot stop, so the service sees it through and ends
what it started; nothing is left running that nobody watches. And the containers of agents whose end is
recorded are removed when the service starts.

The window is made as long as the test needs, not hoped for: the service talks to the engine through
tests/support/docker_gate.py, which holds the container's create request until the kill has landed."""

from __future__ import annotations

import contextlib
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_docker_runtime import _crash_while_counting
from tests.e2e.test_workflow import PLAN, STARTER
from tests.e2e.test_workflow_file import _commit_file, _queue
from tests.support import fake_anthropic as fm
from tests.support.docker_gate import DockerGate
from tests.support.runtimes import agent_containers, require_docker
from tests.support.server import Server, write_db

pytestmark = pytest.mark.xdist_group("docker")

HOOK_CREATE = re.compile(rb"^POST /\S*containers/create\?name=orchestrator-[\w-]+\.before_run ")
CLI_CREATE = re.compile(rb"^POST /\S*containers/create\?name=orchestrator-[\w-]+ ")
STARTED = re.compile(rb"^POST /\S*containers/\w+/start ")
CANCELLED = "cancelled while it was being started"


@pytest.fixture
def image(tmp_path: Path) -> Iterator[str]:
    yield require_docker()
    import docker

    client = docker.from_env()
    try:
        for run_dir in tmp_path.glob("data*/runs/*"):  # whatever a failed test left behind
            for label in (run_dir.name, f"{run_dir.name}.before_run"):
                filters = {"label": f"orchestrator.agent_id={label}"}
                for container in client.containers.list(all=True, filters=filters):
                    with contextlib.suppress(docker.errors.NotFound):
                        container.remove(force=True)
    finally:
        client.close()


def _kill_in_background(server: Server, agent_id: str) -> tuple[threading.Thread, dict[str, Any]]:
    answer: dict[str, Any] = {}

    def kill() -> None:
        url = f"{server.url}/api/agents/{agent_id}/kill"
        answer["response"] = httpx.post(url, headers=server.headers, timeout=120)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    return killer, answer


@pytest.mark.parametrize(
    ("held", "before_run", "suffix"),
    [(HOOK_CREATE, "echo never; sleep 3617", ".before_run"), (CLI_CREATE, "true", "")],
    ids=["during-the-hooks-start", "during-the-clis-start"],
)
def test_a_kill_while_the_engine_creates_the_container_leaves_no_container(  # type: ignore[no-untyped-def]
    make_server,
    workflow_env: dict[str, str],
    fake_model: fm.FakeAnthropic,
    tmp_path: Path,
    image: str,
    held: re.Pattern[bytes],
    before_run: str,
    suffix: str,
) -> None:
    project = Path(workflow_env["PROJECTS_DIR"]) / "calc"
    _commit_file(project, f'[hooks]\nbefore_run = "{before_run}"\n', tmp_path)
    marker = fake_model.roles({STARTER: [[PLAN]]})
    with DockerGate(held) as gate:
        server = make_server(AGENT_RUNTIME="docker", AGENT_IMAGE=image, DOCKER_HOST=gate.url, **workflow_env)
        agent_id = server.first_agent_of(_queue(server, f"One. {marker}"))
        assert gate.holding.wait(90), f"the container's create never came\n{server.log()}"
        assert server.agent(agent_id)["status"] == "starting"

        killer, answer = _kill_in_background(server, agent_id)
        deadline = time.monotonic() + 30
        while CANCELLED not in server.log() and killer.is_alive():  # the kill has landed
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        gate.open()  # the engine creates the container the start thread asked for
        killer.join(120)
        assert not killer.is_alive()
        assert answer["response"].status_code == 200, answer["response"].text
        killed = answer["response"].json()
        assert (killed["status"], killed["end_reason"]) == ("killed", "killed"), killed

        # the thread went on with the start the kill cut into: the container was created and started
        deadline = time.monotonic() + 30
        while not gate.relayed_after_held(STARTED):
            assert time.monotonic() < deadline, f"{gate.lines}\n{server.log()}"
            time.sleep(0.05)
        assert agent_containers(f"{agent_id}{suffix}") == [], "a container the service no longer watches"
        assert fake_model.requests_for(marker) == []  # no agent's CLI ever reached the model


def test_containers_of_ended_agents_are_removed_at_start_and_others_left(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, image: str
) -> None:
    first, agent, env = _crash_while_counting(
        make_server, tmp_path, {"AGENT_RUNTIME": "docker", "AGENT_IMAGE": image}
    )
    # what a start whose thread outlived its cancelled job leaves: the agent's end is recorded, its
    # container runs
    write_db(
        first,
        f"UPDATE agents SET status = 'killed', end_reason = 'killed' WHERE id = '{agent['id']}'",
    )
    assert agent_containers(agent["id"])
    import docker

    client = docker.from_env()
    stranger = "coding-0badf00d"  # another service's agent on the same engine: not in this store
    other = client.containers.run(
        image,
        ["sleep", "300"],
        detach=True,
        labels={"orchestrator.agent_id": stranger, "orchestrator.instance_id": "elsewhere"},
    )
    # and one whose agent has the same id in another service's store: its run directory is elsewhere
    namesake = client.containers.run(
        image,
        ["sleep", "300"],
        detach=True,
        labels={"orchestrator.agent_id": agent["id"], "orchestrator.instance_id": "elsewhere"},
    )
    try:
        second = make_server(data_dir=first.data_dir, **env)
        assert agent_containers(agent["id"]) == [namesake.id], second.log()
        assert "still exists: removed" in second.log()
        assert second.agent(agent["id"])["status"] == "killed"
        assert agent_containers(stranger) == [other.id]
    finally:
        for container in (other, namesake):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        client.close()


def test_a_stop_while_the_engine_creates_the_hooks_container_leaves_no_container(  # type: ignore[no-untyped-def]
    make_server, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic, tmp_path: Path, image: str
) -> None:
    project = Path(workflow_env["PROJECTS_DIR"]) / "calc"
    _commit_file(project, '[hooks]\nbefore_run = "echo never; sleep 3617"\n', tmp_path)
    marker = fake_model.roles({STARTER: [[PLAN]]})
    with DockerGate(HOOK_CREATE) as gate:
        server = make_server(AGENT_RUNTIME="docker", AGENT_IMAGE=image, DOCKER_HOST=gate.url, **workflow_env)
        agent_id = server.first_agent_of(_queue(server, f"One. {marker}"))
        assert gate.holding.wait(90), f"the container's create never came\n{server.log()}"

        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while CANCELLED not in server.log() and server.proc.poll() is None:  # the stop has landed
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        time.sleep(0.5)  # time to end, were the stop not waiting for the start
        assert server.proc.poll() is None, "the service ended while its start thread waited on the engine"
        gate.open()
        assert server.proc.wait(60) in (0, -signal.SIGTERM), server.log()  # uvicorn re-raises it

        deadline = time.monotonic() + 30
        while not gate.relayed_after_held(STARTED):
            assert time.monotonic() < deadline, f"{gate.lines}\n{server.log()}"
            time.sleep(0.05)
        assert agent_containers(f"{agent_id}.before_run") == [], "a container that outlived its service"
        status = server.query(f"SELECT status, end_reason FROM agents WHERE id = '{agent_id}'")
        assert status == [("failed", "never_started")], f"{status}\n{server.log()}"


def test_a_container_created_but_never_started_is_removed_not_adopted(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, image: str
) -> None:
    first, agent, env = _crash_while_counting(
        make_server, tmp_path, {"AGENT_RUNTIME": "docker", "AGENT_IMAGE": image}
    )
    # what a service that ended between the container's create and its start leaves behind
    import docker

    client = docker.from_env()
    try:
        for container in client.containers.list(
            all=True, filters={"label": f"orchestrator.agent_id={agent['id']}"}
        ):
            container.remove(force=True)
        created = client.containers.create(
            image, ["sleep", "300"], labels={"orchestrator.agent_id": agent["id"]}
        )
        assert created.status == "created"
    finally:
        client.close()
    write_db(
        first,
        f"UPDATE agents SET status = 'starting', container_id = NULL, pid = NULL WHERE id = '{agent['id']}'",
    )

    second = make_server(data_dir=first.data_dir, **env)
    done = second.wait_agent(agent["id"], timeout=30, statuses=("failed", "running", "completed"))
    assert (done["status"], done["end_reason"]) == ("failed", "never_started"), done
    assert agent_containers(agent["id"]) == []
