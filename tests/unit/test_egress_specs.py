"""The pure parts of the egress wiring: the bwrap network block, the container config, the factory."""

from __future__ import annotations

from pathlib import Path

from orchestrator.runtimes.base import Limits, RunSpec
from orchestrator.runtimes.docker import DockerRuntime, container_config
from orchestrator.runtimes.egress import INSIDE_DIR, RELAY_SCRIPT, Relay
from orchestrator.runtimes.factory import egress_state, make_runtime
from orchestrator.runtimes.host import HostRuntime
from orchestrator.runtimes.ownership import AgentUser
from orchestrator.runtimes.sandbox import bwrap_argv
from orchestrator.settings import Settings

RUN = Path("/srv/orch/runs/coding-1")
SPEC = RunSpec(
    agent_id="coding-1",
    argv=["/opt/claude", "-p"],
    env={"PATH": "/usr/bin:/bin", "HOME": str(RUN / "home")},
    cwd=Path("/srv/orch/workspaces/coding-1"),
    run_dir=RUN,
    limits=Limits(60),
)
RELAY = Relay(RUN / "net", model_port=18080, socat="/usr/bin/socat")


def test_the_bwrap_network_block_unshares_binds_the_sockets_and_wraps_the_command() -> None:
    argv = bwrap_argv("/usr/bin/bwrap", SPEC, network=RELAY)
    assert "--unshare-net" in argv
    assert argv.index("--unshare-net") > argv.index("/tmp"), "after the file-system block"
    bind = argv.index("--ro-bind", argv.index("--unshare-net"))
    assert argv[bind + 1 : bind + 3] == [str(RUN / "net"), str(INSIDE_DIR)]
    setenv = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"}
    assert setenv["HTTPS_PROXY"] == setenv["HTTP_PROXY"] == "http://127.0.0.1:3128"
    assert setenv["NO_PROXY"] == ""
    command = argv[argv.index("--") + 1 :]
    assert command[:3] == ["/bin/sh", "-c", RELAY_SCRIPT]
    assert command[4:9] == ["/usr/bin/socat", str(INSIDE_DIR), "3128", "18080", "--"]
    assert command[9:] == SPEC.argv
    assert argv[argv.index("--unshare-net") + 1 : argv.index("--unshare-net") + 3] == ["--tmpfs", "/run"]
    assert "--unshare-net" not in bwrap_argv("/usr/bin/bwrap", SPEC)


def test_run_is_left_alone_when_the_agent_is_given_a_path_under_it() -> None:
    assert "/run" in RELAY.bwrap_args([Path("/srv/ws")])
    assert "/run" not in RELAY.bwrap_args([Path("/run/orchestrator/workspaces/a")])
    assert "/run" in Relay(Path("/run/orchestrator/runs/a/net")).bwrap_args(), "seen at INSIDE_DIR, not there"


def test_a_container_without_network_gets_the_relay() -> None:
    config = container_config(
        SPEC, Limits(60), image="i", network_mode="none", user=AgentUser(1000, 1000), relay=RELAY
    )
    assert config["network_mode"] == "none"
    assert config["environment"]["HTTPS_PROXY"] == "http://127.0.0.1:3128"
    assert config["command"][0] == str(RUN)
    assert config["command"][1:4] == ["/bin/sh", "-c", RELAY_SCRIPT]
    assert config["command"][-2:] == SPEC.argv


def test_the_factory_and_the_health_line_follow_the_settings() -> None:
    docker = make_runtime(Settings(AGENT_RUNTIME="docker"), "i")  # type: ignore[call-arg]
    assert isinstance(docker, DockerRuntime) and docker.egress is not None
    on_host_net = make_runtime(Settings(AGENT_RUNTIME="docker", AGENT_DOCKER_NETWORK="host"), "i")  # type: ignore[call-arg]
    assert isinstance(on_host_net, DockerRuntime) and on_host_net.egress is None
    bare = make_runtime(Settings(AGENT_SANDBOX="none"), "i")  # type: ignore[call-arg]
    assert isinstance(bare, HostRuntime) and bare.egress is None
    boxed = make_runtime(Settings(AGENT_SANDBOX="bwrap"), "i")  # type: ignore[call-arg]
    assert isinstance(boxed, HostRuntime) and boxed.egress is not None
    settings = Settings()  # type: ignore[call-arg]
    assert egress_state(bare, settings).startswith("OPEN")
    assert egress_state(boxed, settings).startswith("restricted")
    assert egress_state(docker, settings).startswith("restricted")
    host_net = Settings(AGENT_RUNTIME="docker", AGENT_DOCKER_NETWORK="host")  # type: ignore[call-arg]
    assert egress_state(on_host_net, host_net).startswith("OPEN")
