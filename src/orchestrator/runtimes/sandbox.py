"""A bubblewrap sandbox around a host agent (AGENT_SANDBOX=bwrap).

The agent gets its own PID, IPC and UTS namespaces, the whole file system read-only, a private `/tmp`,
and write access only to its workspace (plus `--add-dir` directories), its HOME and CLAUDE_CONFIG_DIR.
The network is the egress block's (`egress.py`): with a Relay, the agent has its own network namespace
and reaches only what the service's proxy allows; without one, it shares the host's network.

Layout and the adoption rule: the host runtime's `sh` wrapper stays OUTSIDE bwrap, in its own session,
and runs `bwrap ... -- claude ...`. `--die-with-parent` ties the sandbox to that wrapper, not to the
service: a service that crashes leaves wrapper and sandbox running, and the next service adopts the agent
by the wrapper's pid exactly as for an unsandboxed host agent. When the CLI (pid 2 in the sandbox) ends,
bwrap's init ends and the kernel kills whatever the agent left behind in its PID namespace.

Terminating: a SIGTERM to the outer bwrap would make it exit at once and (through --die-with-parent)
SIGKILL the CLI. So a sandboxed agent is terminated by sending SIGTERM only to its processes inside the
PID namespace (those with a nested pid); bwrap's init ignores it and ends when the CLI has ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from functools import cached_property
from pathlib import Path

from orchestrator.runtimes.base import RunSpec
from orchestrator.runtimes.egress import Relay
from orchestrator.runtimes.procfs import marked_pids

DEFAULT_BWRAP = "/usr/bin/bwrap"


def add_dirs(argv: list[str]) -> list[str]:
    """The `--add-dir` directories of a claude command line."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--add-dir"]


def writable_paths(spec: RunSpec) -> list[Path]:
    """What the agent may write: workspace, extra dirs, HOME and CLAUDE_CONFIG_DIR; in order, once each."""
    found: list[Path] = []
    candidates = [str(spec.cwd), *add_dirs(spec.argv)]
    candidates += [spec.env[name] for name in ("HOME", "CLAUDE_CONFIG_DIR") if spec.env.get(name)]
    for raw in candidates:
        path = Path(raw)
        if path.is_absolute() and path not in found:
            found.append(path)
    return found


def bwrap_argv(bwrap: str, spec: RunSpec, *, as_root: bool = True, network: Relay | None = None) -> list[str]:
    """The command that runs `spec.argv` in the sandbox. Pure."""
    argv = [bwrap]
    if not as_root:
        argv.append("--unshare-user-try")
    argv += [
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        "agent",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",  # noqa: S108 - a private tmpfs inside the sandbox
    ]
    program = spec.argv[0]
    if os.path.isabs(program):
        # the CLI may live under /tmp (tests), which the private /tmp hides
        argv += ["--ro-bind-try", program, program]
    for path in writable_paths(spec):
        argv += ["--bind", str(path), str(path)]
    command = spec.argv
    if network is not None:  # the network block (egress.py); comes last so its binds are not hidden
        argv += network.bwrap_args(writable_paths(spec))
        command = network.wrap(spec.argv)
    argv += ["--chdir", str(spec.cwd), "--", *command]
    return argv


def _nested(pid: int) -> bool:
    """Inside a PID namespace below ours (an `NSpid:` line with more than one pid)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return len(line.split()) > 2
    return False


def terminate_inside(agent_id: str) -> int:
    """SIGTERM to the agent's processes inside its sandbox; how many were signalled."""
    sent = 0
    for pid in marked_pids(agent_id):
        if _nested(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
                sent += 1
    return sent


class Bwrap:
    def __init__(self, path: str = DEFAULT_BWRAP) -> None:
        self.path = path
        self.as_root = os.geteuid() == 0

    def wrap(self, spec: RunSpec, network: Relay | None = None) -> list[str]:
        return bwrap_argv(self.path, spec, as_root=self.as_root, network=network)

    @cached_property
    def problem(self) -> str | None:
        """None when a trial sandbox runs here (checked once), else what is wrong."""
        if not (os.path.isfile(self.path) and os.access(self.path, os.X_OK)):
            return (
                f"AGENT_SANDBOX=bwrap but there is no bubblewrap at {self.path} "
                "(Debian: apt-get install bubblewrap)"
            )
        trial = [self.path, *(() if self.as_root else ("--unshare-user-try",))]
        trial += ["--unshare-pid", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "true"]
        try:
            done = subprocess.run(
                trial, capture_output=True, timeout=10, check=False, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap does not run here: {exc}"
        if done.returncode != 0:
            return f"bubblewrap does not run here: {done.stderr.decode(errors='replace').strip()[:300]}"
        return None
