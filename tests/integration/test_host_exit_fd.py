"""The host runtime tells the end of a run through a pidfd, so a supervisor need not poll for it."""

from __future__ import annotations

import asyncio
import select
from pathlib import Path

from orchestrator.runtimes.base import Limits, RunSpec
from orchestrator.runtimes.host import HostRuntime


def _spec(tmp_path: Path, script: str) -> RunSpec:
    cwd = tmp_path / "ws"
    cwd.mkdir()
    return RunSpec(
        agent_id="coding-exitfd01",
        argv=["/bin/sh", "-c", script],
        env={"PATH": "/usr/bin:/bin", "ORCHESTRATOR_AGENT_ID": "coding-exitfd01"},
        cwd=cwd,
        run_dir=tmp_path / "run",
        limits=Limits(wall_seconds=30),
        labels={"agent_id": "coding-exitfd01"},
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
