"""The runtime protocol: start a command somewhere, read its output from a position, wait, stop, adopt."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from orchestrator.domain.types import LogStream


class RuntimeError_(Exception):
    """The runtime could not start or reach an agent."""


@dataclass(frozen=True)
class Limits:
    wall_seconds: float
    memory_bytes: int | None = None
    cpus: float | None = None
    pids: int | None = None


@dataclass(frozen=True)
class DefaultLimits:
    """The limits of the settings (AGENT_MEMORY_MB, AGENT_CPUS, AGENT_PIDS): a runtime built by the factory
    applies them to every spec whose own limit is None, so the manager states only the wall time."""

    memory_bytes: int | None = None
    cpus: float | None = None
    pids: int | None = None

    def apply(self, limits: Limits) -> Limits:
        return replace(
            limits,
            memory_bytes=limits.memory_bytes if limits.memory_bytes is not None else self.memory_bytes,
            cpus=limits.cpus if limits.cpus is not None else self.cpus,
            pids=limits.pids if limits.pids is not None else self.pids,
        )


PROMPT_FILE = "prompt"
MCP_CONFIG_FILE = "mcp.json"  # the CLI's --mcp-config: the service's, read-only to the agent


@dataclass(frozen=True)
class RunSpec:
    """`prompt` is the CLI's input, always on stdin, never in argv: host and docker runtimes write it to
    the run directory's PROMPT_FILE; the kubernetes runtime mounts it from a ConfigMap."""

    agent_id: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    run_dir: Path
    limits: Limits
    labels: dict[str, str] = field(default_factory=dict)
    prompt: str = ""
    # MCP_CONFIG_FILE's text (secrets filled in), when the agent has servers; never in a repr (a log line)
    mcp_config: str | None = field(default=None, repr=False)
    # a workspace hook's run (agents/hooks.py): argv is a shell's, not the CLI's (docker neither swaps
    # nor mounts the CLI at argv[0]), and the agent's `--add-dir` directories come here, not in argv
    program_is_cli: bool = True
    writable: tuple[Path, ...] = ()

    def write_prompt(self) -> Path:
        path = self.run_dir / PROMPT_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self.prompt)
        return path

    def write_mcp_config(self) -> Path | None:
        """MCP_CONFIG_FILE in the run directory (the service's: hosts mount this one file read-only
        into the agent's sandbox), when there is one to write; removed by `forget_mcp_config`."""
        if self.mcp_config is None:
            return None
        path = self.run_dir / MCP_CONFIG_FILE
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self.mcp_config)
        return path


def forget_mcp_config(run_dir: Path) -> None:
    """The run ended: the secrets its MCP servers were given leave the disk."""
    (run_dir / MCP_CONFIG_FILE).unlink(missing_ok=True)


class RunHandle(Protocol):
    @property
    def ref(self) -> str:
        """What identifies the run in its runtime (the spec's container_id column)."""

    @property
    def pid(self) -> int | None: ...

    def read(self, stream: LogStream, offset: int, max_bytes: int) -> bytes:
        """Output of `stream` from byte `offset` on, at most `max_bytes`; empty when nothing new."""

    def poll(self) -> tuple[bool, int | None]:
        """(ended, exit code); the exit code is None when it cannot be known."""

    async def wait(self) -> int | None:
        """The exit code once the run has ended (None when it cannot be known)."""

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def sweep(self) -> None:
        """Ends whatever the agent left running after its main process ended."""

    def exit_fd(self) -> int | None:
        """A descriptor that turns readable when the run ends (a pidfd), or None: then polls alone see it."""

    def close(self) -> None:
        """Releases what the handle holds; the run itself goes on if it still runs."""


class Runtime(Protocol):
    name: str
    # what its start makes in a run directory, made empty beforehand in a blank one (agents/blanks.py)
    run_files: tuple[str, ...]

    async def start(self, spec: RunSpec) -> RunHandle: ...

    async def adopt(self, agent_id: str, ref: str, run_dir: Path) -> RunHandle | None:
        """A handle on a run that outlived the service that started it, or None if it is gone."""

    def check(self) -> str | None:
        """None when the runtime can start agents, else what is wrong."""
