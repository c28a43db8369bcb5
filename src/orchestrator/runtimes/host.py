"""Agents as host processes. Output goes to files in the run directory, so a restarted service
re-attaches to a live agent and reads on from the last stored byte.

Optionally boxed in by bubblewrap (`sandbox.py`: the wrapper shell stays outside the sandbox, so adoption
works the same), with its network cut down to the egress proxy (`egress.py`, only inside bwrap), and
limited by cgroup directories (`cgroups.py`: the wrapper joins them before it starts the CLI; limits the
spec leaves open come from the runtime's defaults, i.e. the settings)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from functools import partial
from pathlib import Path

from orchestrator.domain.types import LogStream
from orchestrator.runtimes import cgroups, files, seccomp
from orchestrator.runtimes.base import (
    PROMPT_FILE,
    DefaultLimits,
    RunHandle,
    RunSpec,
    RuntimeError_,
    forget_mcp_config,
)
from orchestrator.runtimes.egress import Egress, Relay
from orchestrator.runtimes.procfs import is_running, kill_found, kill_marked, signal_group
from orchestrator.runtimes.sandbox import Bwrap, terminate_inside

_WRAPPER = (
    'd=$1; shift; printf "%s\\n" "$$" > "$d/pid"; trap : TERM INT HUP; "$@"; rc=$?; '
    'printf "%s\\n" "$rc" > "$d/exit_code.tmp" && mv "$d/exit_code.tmp" "$d/exit_code"; exit "$rc"'
)
_JOIN_CGROUPS = (
    'while [ "$1" != -- ]; do echo $$ > "$1" || { echo "agent: cannot join cgroup $1" >&2; exit 125; }; '
    "shift; done; shift; "
)
_SANDBOX_FILE = "sandbox"  # its presence: the run is in the sandbox
_OUTPUT_FILES = (LogStream.STDOUT.value, LogStream.STDERR.value)
_OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
_MARKER_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK  # never waits on a FIFO
AGENT_NICE = 10  # agents yield the CPU to the service that watches them (and to its API)
_POLL_ADOPTED_SECONDS = 0.2
SWEEP_WAIT_SECONDS = 2.0  # for killed processes to be gone before their agent's end is told


def _ref(pid: int) -> str:
    return f"host-pid-{pid}"


def _pid_of(ref: str) -> int | None:
    prefix = "host-pid-"
    if ref.startswith(prefix) and ref[len(prefix) :].isdigit():
        return int(ref[len(prefix) :])
    return None


def nice_session(pid: int, nice: int) -> None:
    """Lowers the CPU share of the session `pid` leads. Where the kernel schedules by session (autogroup,
    the default of desktop and many server kernels), each session competes with the service's as one
    group, whatever its processes' nice: 30 agents in 30 sessions got 30 shares to the service's one, and
    its API answered in seconds. The group's own nice is what yields. Nothing where the kernel has no such
    groups or refuses (without CAP_SYS_ADMIN it takes one change per 100 ms)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")


class HostHandle:
    def __init__(
        self,
        agent_id: str,
        pid: int,
        run_dir: Path,
        proc: subprocess.Popen[bytes] | None,
        *,
        sandboxed: bool = False,
        sealed: bool = False,
        cgroup_root: Path = cgroups.ROOT,
        egress: Egress | None = None,
    ) -> None:
        self._agent_id = agent_id
        self._sealed = sealed
        self._egress = egress
        self._pid = pid
        self._proc = proc
        self._files = files.OutputFiles(run_dir)
        self._sandboxed = sandboxed
        self._cgroup_root = cgroup_root
        self._pidfd: int | None = None

    @property
    def ref(self) -> str:
        return _ref(self._pid)

    @property
    def pid(self) -> int:
        return self._pid

    def read(self, stream: LogStream, offset: int, max_bytes: int) -> bytes:
        return self._files.read(stream, offset, max_bytes)

    def poll(self) -> tuple[bool, int | None]:
        """(ended, exit code). The exit code is None when the run ended out of our sight."""
        if self._proc is not None:
            code = self._proc.poll()
            if code is None:
                return False, None
            return True, (128 - code if code < 0 else code)
        if is_running(self._pid, self._agent_id):
            return False, None
        return True, self._files.exit_code()

    async def wait(self) -> int | None:
        while True:
            ended, code = self.poll()
            if ended:
                return code
            await asyncio.sleep(_POLL_ADOPTED_SECONDS)

    def terminate(self) -> None:
        if self._sandboxed and terminate_inside(self._agent_id):
            return
        signal_group(self._pid, signal.SIGTERM)

    def kill(self) -> None:
        signal_group(self._pid, signal.SIGKILL)
        self._kill_everything()

    def _kill_everything(self, wait_seconds: float = 0.0) -> None:
        """SIGKILL to every process in the agent's cgroup, then to every one carrying its marker. A sealed
        agent is all in its group: the scan of every process on the host (about 5 ms with 100 agents
        running) would find nothing more."""
        kill_found(partial(cgroups.members, self._agent_id, self._cgroup_root), wait_seconds=wait_seconds)
        if not self._sealed:
            kill_marked(self._agent_id, wait_seconds=wait_seconds)

    def sweep(self) -> None:
        # also after a run that ended on its own: an unsandboxed agent's processes outlive it, some rid
        # of the marker (written over their environment), and a sandboxed one's namespace dies only once
        # its init's parent-death signal arrives. What is in the agent's cgroup cannot hide either way.
        self._kill_everything(wait_seconds=SWEEP_WAIT_SECONDS)
        forget_mcp_config(self._files.run_dir)
        cgroups.remove(self._agent_id, self._cgroup_root)
        if self._egress is not None:
            self._egress.remove(self._agent_id)

    def exit_fd(self) -> int | None:
        """A pidfd on the wrapper shell this service started (none on an adopted pid: it may be reused)."""
        if self._pidfd is None and self._proc is not None and self._proc.returncode is None:
            try:
                self._pidfd = os.pidfd_open(self._proc.pid)
            except OSError:  # already reaped, or a kernel without pidfds
                return None
        return self._pidfd

    def close(self) -> None:
        self._files.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if self._egress is not None:
            self._egress.close(self._agent_id)


class HostRuntime:
    name = "host"

    def __init__(
        self,
        *,
        sandbox: Bwrap | None = None,
        defaults: DefaultLimits | None = None,
        cgroup_root: Path = cgroups.ROOT,
        egress: Egress | None = None,
        warning: str | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.egress = egress if sandbox else None  # a network namespace needs the sandbox
        self.warning = warning  # why agents run without a sandbox, said at start, in health and doctor
        self._defaults = defaults or DefaultLimits()
        self._cgroup_root = cgroup_root
        # a file made costs 0.2 ms of this machine's CPU: in a blank, off the start's path
        self.run_files: tuple[str, ...] = (
            PROMPT_FILE,
            *_OUTPUT_FILES,
            *((_SANDBOX_FILE,) if sandbox else ()),
        )

    def command(
        self,
        spec: RunSpec,
        cgroup_procs: list[str],
        network: Relay | None = None,
        seccomp_fd: int | None = None,
    ) -> list[str]:
        """The wrapper shell's command line: join the cgroups, run (sandboxed) argv, record the exit code."""
        inner = self.sandbox.wrap(spec, network, seccomp_fd) if self.sandbox else spec.argv
        if not cgroup_procs:
            return ["/bin/sh", "-c", _WRAPPER, "agent", str(spec.run_dir), *inner]
        return [
            "/bin/sh",
            "-c",
            _JOIN_CGROUPS + _WRAPPER,
            "agent",
            *cgroup_procs,
            "--",
            str(spec.run_dir),
            *inner,
        ]

    async def start(self, spec: RunSpec) -> RunHandle:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        limits = self._defaults.apply(spec.limits)
        groups = cgroups.create(spec.agent_id, limits, self._cgroup_root)
        kept: list[int] = []  # the prompt, stdout, stderr, the seccomp filter: closed here once started
        try:
            if self.sandbox:
                os.close(os.open(spec.run_dir / _SANDBOX_FILE, _MARKER_FLAGS, 0o600))
            relay = await self.egress.open(spec.agent_id) if self.egress else None
            spec.write_mcp_config()
            kept.append(os.open(spec.write_prompt(), os.O_RDONLY | os.O_NOFOLLOW))
            for name in _OUTPUT_FILES:
                kept.append(os.open(spec.run_dir / name, _OUTPUT_FLAGS, 0o600))
            filter_fd = seccomp.program_fd() if self.sandbox else None
            if filter_fd is not None:
                kept.append(filter_fd)
            prompt, out, err = kept[:3]
            proc = subprocess.Popen(  # noqa: ASYNC220 - ~1 ms, cheaper than a thread hop (bench)
                self.command(spec, groups.procs_files, relay, filter_fd),
                stdin=prompt,
                stdout=out,
                stderr=err,
                cwd=spec.cwd,
                env=spec.env,
                start_new_session=True,
                pass_fds=() if filter_fd is None else (filter_fd,),
            )
        except OSError as exc:
            forget_mcp_config(spec.run_dir)
            cgroups.remove(spec.agent_id, self._cgroup_root, wait_seconds=0)
            if self.egress:
                self.egress.close(spec.agent_id)
            raise RuntimeError_(f"cannot start {spec.argv[0]!r}: {exc.strerror or exc}") from exc
        finally:
            for fd in kept:
                os.close(fd)
        nice = max(AGENT_NICE, os.getpriority(os.PRIO_PROCESS, 0))  # the service may run nicer still
        with contextlib.suppress(OSError):  # the group is gone already
            os.setpriority(os.PRIO_PGRP, proc.pid, nice)
        nice_session(proc.pid, nice)
        return HostHandle(
            spec.agent_id,
            proc.pid,
            spec.run_dir,
            proc,
            sandboxed=self.sandbox is not None,
            sealed=self.seals(groups),
            cgroup_root=self._cgroup_root,
            egress=self.egress,
        )

    def seals(self, groups: cgroups.Groups) -> bool:
        """Whether every process of an agent started in `groups` stays in them: the wrapper joins them
        before the sandbox starts, and in the sandbox nothing can leave a group of cgroup v1 (/sys
        read-only, no capability, no user namespace to mount a hierarchy of its own in)."""
        return (
            bool(groups.dirs)
            and self.sandbox is not None
            and self.sandbox.no_userns
            and cgroups.held_by_read_only_sys(self._cgroup_root)
        )

    async def adopt(self, agent_id: str, ref: str, run_dir: Path) -> HostHandle | None:
        pid = _pid_of(ref)
        if pid is None or not run_dir.is_dir():  # noqa: ASYNC240 - one stat
            return None
        sandboxed = (run_dir / _SANDBOX_FILE).exists()
        egress = self.egress if self.egress and self.egress.relayed(agent_id) else None
        if egress is not None and is_running(pid, agent_id):
            await egress.open(agent_id)
        return HostHandle(
            agent_id, pid, run_dir, None, sandboxed=sandboxed, cgroup_root=self._cgroup_root, egress=egress
        )

    def check(self) -> str | None:
        if not os.access("/bin/sh", os.X_OK):  # the wrapper's shell; no PATH walk on every spawn
            return "no /bin/sh on this host"
        if self.sandbox is None:
            return None
        if self.sandbox.problem or self.egress is None:
            return self.sandbox.problem
        return self.egress.problem(self.sandbox.path, as_root=self.sandbox.as_root)
