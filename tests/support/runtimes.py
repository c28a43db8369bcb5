"""What the runtime tests need from the machine (bubblewrap, a Docker engine and its agent image), and
the fake CLI scripts they run.

`scripts/test` installs and starts those when it runs as root and then sets ORCHESTRATOR_REQUIRE_RUNTIMES=1:
from there on a missing piece fails the tests instead of skipping them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

TEST_IMAGE = os.environ.get("AGENT_TEST_IMAGE", "orchestrator-agent:test")
RESULT_LINE = json.dumps(
    {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "num_turns": 1,
        "result": "fake done",
        "total_cost_usd": 0.01,
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
)


def _missing(problem: str) -> None:
    if os.environ.get("ORCHESTRATOR_REQUIRE_RUNTIMES") == "1":
        pytest.fail(f"{problem} (ORCHESTRATOR_REQUIRE_RUNTIMES=1: scripts/test should have provided it)")
    pytest.skip(f"{problem}: run scripts/test as root, which installs and starts it")


def require_gdb() -> str:
    path = shutil.which("gdb")
    if path is None:
        _missing("no gdb (Debian package gdb)")
    assert path is not None
    return path


def require_bwrap() -> str:
    path = shutil.which("bwrap") or "/usr/bin/bwrap"
    if not os.access(path, os.X_OK):
        _missing("no bubblewrap (Debian package bubblewrap)")
    done = subprocess.run(
        [path, "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc", "true"],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        _missing(f"bubblewrap cannot create a sandbox here: {done.stderr.decode().strip()}")
    return path


def require_docker() -> str:
    """The test image's name, once the engine answers and has it."""
    try:
        import docker
    except ImportError:
        _missing("no docker package (pip install 'orchestrator[docker]')")
    socket = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if socket.startswith("unix://") and not os.path.exists(socket[len("unix://") :]):
        _missing(f"no Docker engine at {socket}")
    client = docker.from_env()
    try:
        client.ping()
        client.images.get(TEST_IMAGE)
    except docker.errors.ImageNotFound:
        _missing(f"no image {TEST_IMAGE} (scripts/ci-docker builds it)")
    except docker.errors.DockerException as exc:
        _missing(f"the Docker engine does not answer: {exc}")
    finally:
        client.close()
    return TEST_IMAGE


def agent_containers(agent_id: str) -> list[str]:
    import docker

    client = docker.from_env()
    try:
        found = client.containers.list(all=True, filters={"label": f"orchestrator.agent_id={agent_id}"})
        return [c.id or "" for c in found]
    finally:
        client.close()


def remove_containers(agent_id: str) -> None:
    import docker

    client = docker.from_env()
    try:
        for container in client.containers.list(
            all=True, filters={"label": f"orchestrator.agent_id={agent_id}"}
        ):
            container.remove(force=True)
    finally:
        client.close()


def fake_cli(directory: Path, body: str, name: str = "claude") -> Path:
    """An executable `/bin/sh` script standing in for the CLI; it ends with a result line."""
    script = directory / name
    script.write_text(f"#!/bin/sh\n{body.strip()}\necho '{RESULT_LINE}'\n")
    script.chmod(0o755)
    return script
