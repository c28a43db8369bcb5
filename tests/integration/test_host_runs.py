"""Host runs: their end is told through a pidfd (no poll needed to see it), and they run at a lower CPU
priority than the service."""

from __future__ import annotations

import asyncio
import os
import secrets
import select
from pathlib import Path

import pytest

from orchestrator.runtimes import cgroups
from orchestrator.runtimes.base import Limits, RunSpec
from orchestrator.runtimes.host import AGENT_NICE, HostRuntime
from orchestrator.runtimes.sandbox import Bwrap
from tests.support.runtimes import require_bwrap


def _spec(tmp_path: Path, script: str) -> RunSpec:
    cwd = tmp_path / "ws"
    cwd.mkdir()
    # an id of its own: tests on other workers must not share its cgroup (as root, each run has one)
    agent_id = f"coding-{secrets.token_hex(4)}"
    return RunSpec(
        agent_id=agent_id,
        argv=["/bin/sh", "-c", script],
        env={"PATH": "/usr/bin:/bin", "ORCHESTRATOR_AGENT_ID": agent_id},
        cwd=cwd,
        run_dir=tmp_path / "run",
        limits=Limits(wall_seconds=30),
        labels={"agent_id": agent_id},
        prompt="",
    )


def test_the_exit_fd_turns_readable_when_the_run_ends_and_not_before(tmp_path: Path) -> None:
    handle = asyncio.run(HostRuntime().start(_spec(tmp_path, "sleep 30")))
    try:
        fd = handle.exit_fd()
        assert fd is not None
        assert select.select([fd], [], [], 0.3)[0] == []  # still running
        assert handle.poll() == (False, None)
        handle.terminate()
        assert select.select([fd], [], [], 10)[0] == [fd]
        assert handle.poll()[0]
    finally:
        handle.close()


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[16])


def test_an_agent_and_what_it_starts_run_nicer_than_the_service(tmp_path: Path) -> None:
    handle = asyncio.run(HostRuntime().start(_spec(tmp_path, "sleep 30 & echo $! > child; wait")))
    try:
        child = tmp_path / "ws" / "child"
        for _ in range(200):
            if child.is_file() and child.read_text().strip():
                break
            select.select([], [], [], 0.02)
        assert handle.pid is not None
        assert _nice(handle.pid) == AGENT_NICE > _nice(os.getpid())
        assert _nice(int(child.read_text())) == AGENT_NICE
    finally:
        handle.kill()
        while not handle.poll()[0]:
            select.select([], [], [], 0.02)
        handle.close()


def _autogroup(pid: int) -> tuple[str, int]:
    fields = Path(f"/proc/{pid}/autogroup").read_text().split()
    if not fields:  # in a CPU cgroup of its own, the cgroup's weight sets its share, not an autogroup
        pytest.skip("the kernel schedules this process by its cgroup, not by an autogroup")
    name, _, nice = fields
    return name, int(nice)


@pytest.mark.skipif(not Path("/proc/self/autogroup").is_file(), reason="a kernel without autogroups")
@pytest.mark.skipif(os.geteuid() != 0, reason="without CAP_SYS_ADMIN the kernel takes one change per 100 ms")
def test_an_agents_session_yields_the_cpu_to_the_service_as_a_whole(tmp_path: Path) -> None:
    """An agent leads a session of its own, which the kernel may schedule as one group beside the
    service's: the group's nice, not its processes', sets their share."""
    handle = asyncio.run(HostRuntime().start(_spec(tmp_path, "sleep 30")))
    try:
        group, nice = _autogroup(handle.pid)
        assert group != _autogroup(os.getpid())[0]
        assert nice == AGENT_NICE
    finally:
        handle.kill()
        while not handle.poll()[0]:
            select.select([], [], [], 0.02)
        handle.close()


def test_only_a_cgroup_v1_group_is_trusted_to_hold_a_sandboxed_agent(tmp_path: Path) -> None:
    # on v2 an agent can start a child in another group through a descriptor on the read-only mount
    # (clone3's CLONE_INTO_CGROUP): its end keeps the scan of every process for its marker
    sandbox = Bwrap(require_bwrap())
    if not sandbox.no_userns:
        pytest.skip("this bwrap cannot refuse user namespaces: no agent is sealed")
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    for root in (v1, v2):
        (root / "pids").mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("cpu memory pids\n")
    groups = cgroups.Groups([tmp_path / "group"])
    assert HostRuntime(sandbox=sandbox, cgroup_root=v1).seals(groups)
    assert not HostRuntime(sandbox=sandbox, cgroup_root=v2).seals(groups)
    assert not HostRuntime(sandbox=None, cgroup_root=v1).seals(groups)
    assert not HostRuntime(sandbox=sandbox, cgroup_root=v1).seals(cgroups.Groups([]))
