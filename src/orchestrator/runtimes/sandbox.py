"""A bubblewrap sandbox around a host agent (AGENT_SANDBOX=auto or bwrap).

The agent gets its own PID, IPC and UTS namespaces and a fresh `/proc` (so no other process, the
service's environment included, is visible), the file system read-only, a private `/tmp`, and write
access only to its workspace (plus `--add-dir` directories), its HOME and CLAUDE_CONFIG_DIR.
What the service keeps for itself (`Visibility`: the data directory, the store, event, project, workspace
and run directories, the service's HOME, control sockets) is masked by an empty tmpfs or /dev/null; what
this agent needs inside it (its own workspace, HOME and config, the CLI's install) is bound back. Mounts
go shallowest first, so the most specific rule for a path wins.
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
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from shutil import which

from orchestrator.runtimes.base import MCP_CONFIG_FILE, RunSpec
from orchestrator.runtimes.egress import Relay
from orchestrator.runtimes.procfs import marked_pids

DEFAULT_BWRAP = "/usr/bin/bwrap"


def add_dirs(argv: list[str]) -> list[str]:
    """The `--add-dir` directories of a claude command line."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--add-dir"]


def writable_paths(spec: RunSpec) -> list[Path]:
    """What the agent may write: workspace, extra dirs (a hook's `writable`), HOME and CLAUDE_CONFIG_DIR;
    in order, once each."""
    found: list[Path] = []
    candidates = [str(spec.cwd), *add_dirs(spec.argv), *map(str, spec.writable)]
    candidates += [spec.env[name] for name in ("HOME", "CLAUDE_CONFIG_DIR") if spec.env.get(name)]
    for raw in candidates:
        path = Path(raw)
        if path.is_absolute() and path not in found:
            found.append(path)
    return found


@dataclass(frozen=True)
class Visibility:
    """Host paths kept from agents: directories masked by an empty tmpfs, files by /dev/null; `readable`
    paths (inside a masked one) are bound back read-only."""

    hidden_dirs: tuple[Path, ...] = ()
    hidden_files: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = ()


def _under(path: Path, root: Path) -> bool:
    # `root in path.parents` by the parts: the same answer without building every parent (a spawn asks
    # a few hundred times)
    parts, top = path.parts, root.parts
    return len(parts) >= len(top) and parts[: len(top)] == top


def _depth(path: Path) -> int:
    return len(path.parts)


def _masked_already(path: Path, hidden: Iterable[Path], shown: Iterable[Path]) -> bool:
    """`path` lies in a masked directory with nothing bound back between the two: masking it again is moot."""
    return any(
        root != path and _under(path, root) and not any(_under(s, root) and _under(path, s) for s in shown)
        for root in hidden
    )


def mounts(visibility: Visibility, writable: list[Path]) -> list[str]:
    """The mounts after the read-only root: a private /tmp, the masks, the read-only and writable binds."""
    hidden_dirs = [Path("/tmp"), *(d for d in visibility.hidden_dirs if d != Path("/"))]  # noqa: S108
    shown = [*visibility.readable, *writable]
    ops: list[tuple[int, int, list[str]]] = []
    masks: list[str] = []
    for d in hidden_dirs:
        if not _masked_already(d, hidden_dirs, shown):
            ops.append((_depth(d), 0, ["--tmpfs", str(d)]))
            if d != Path("/tmp"):  # noqa: S108
                masks.append(str(d))
    for f in visibility.hidden_files:
        if not _masked_already(f, hidden_dirs, shown):
            ops.append((_depth(f), 0, ["--ro-bind", "/dev/null", str(f)]))
    for r in visibility.readable:
        ops.append((_depth(r), 1, ["--ro-bind", str(r), str(r)]))
    for w in writable:
        ops.append((_depth(w), 2, ["--bind", str(w), str(w)]))
    ops.sort(key=lambda op: (op[0], op[1]))
    # the masks were writable only for bwrap to make mount points in them: read-only from here on
    return [arg for op in ops for arg in op[2]] + [arg for d in masks for arg in ("--remount-ro", d)]


USERNS_DISABLED = ["--unshare-user", "--disable-userns"]


def _privileges(as_root: bool, *, no_userns: bool) -> list[str]:
    # as root the agent would keep every capability: it could unmount the masks, remount /proc or enter
    # the service's namespaces. Dropped, it is a uid 0 that the kernel lets do nothing privileged.
    argv = ["--cap-drop", "ALL"] if as_root else []
    # a user namespace of its own would give it every capability there again: enough to mount a cgroup
    # hierarchy and move its processes out of its group, raise its limits or freeze other groups
    if no_userns:
        return [*argv, *USERNS_DISABLED]
    return argv if as_root else ["--unshare-user-try"]


def bwrap_argv(
    bwrap: str,
    spec: RunSpec,
    *,
    as_root: bool = True,
    visibility: Visibility | None = None,
    network: Relay | None = None,
    no_userns: bool = False,
    seccomp_fd: int | None = None,
) -> list[str]:
    """The command that runs `spec.argv` in the sandbox. Pure."""
    argv = [bwrap, *_privileges(as_root, no_userns=no_userns)]
    if seccomp_fd is not None:  # seccomp.py: the filter bwrap loads last, before it runs the command
        argv += ["--seccomp", str(seccomp_fd)]
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
        # the init's memory: written, the init would clear the parent-death signal that ends the sandbox
        # with the CLI (seccomp.py refuses the other ways into pid 1)
        *("--ro-bind", "/dev/null", "/proc/1/mem", "--ro-bind", "/dev/null", "/proc/1/task/1/mem"),
    ]
    visibility = visibility or Visibility()
    program = spec.argv[0]
    if os.path.isabs(program) and not visibility.readable:
        # the CLI may live under /tmp (tests), which the private /tmp hides
        visibility = Visibility(visibility.hidden_dirs, visibility.hidden_files, (Path(program),))
    argv += mounts(visibility, writable_paths(spec))
    command = spec.argv
    if network is not None:  # the network block (egress.py); comes last so its binds are not hidden
        argv += network.bwrap_args(writable_paths(spec))
        command = network.wrap(spec.argv)
    argv += ["--chdir", str(spec.cwd), "--", *command]
    return argv


def program_roots(program: str) -> list[Path]:
    """What must stay readable for the CLI to run: the path it is called by and what that links to, each
    as its `node_modules` tree when it lives in one (the pinned CLI: `.bin/claude` links into the
    package), never the directory that holds that tree (a HOME, a data directory)."""
    path = Path(program)
    roots = []
    for candidate in (path, Path(os.path.realpath(path))):
        parts = candidate.parts
        inside = "node_modules" in parts
        roots.append(Path(*parts[: parts.index("node_modules") + 1]) if inside else candidate)
    return list(dict.fromkeys(roots))


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


def _as_found(path: Path) -> tuple[Path, bool] | None:
    """Where `path` leads now and whether that is a directory; None when it leads nowhere. Asked of the
    kernel (an O_PATH descriptor and its name in /proc: a few system calls, where `realpath` and a test
    took a `lstat` for every part of the path, twice); where the kernel will not follow or name it (a
    protected link, a long chain, no /proc, a file replaced meanwhile), `realpath` as before: a mask is
    never dropped for the speed."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return _as_realpath_finds(path)
    try:
        found, held = os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd)
        now = os.stat(found)
    except OSError:
        return _as_realpath_finds(path)
    finally:
        os.close(fd)
    if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
        return _as_realpath_finds(path)
    return Path(found), stat.S_ISDIR(held.st_mode)


def _as_realpath_finds(path: Path) -> tuple[Path, bool] | None:
    # os.path's tests: False, not PermissionError, for what this user cannot even look at
    real = Path(os.path.realpath(path))
    if os.path.isdir(real):
        return real, True
    return (real, False) if os.path.exists(real) else None


class Bwrap:
    def __init__(self, path: str = DEFAULT_BWRAP, hidden: Visibility | None = None) -> None:
        self.path = path
        self.as_root = os.geteuid() == 0
        self.hidden = hidden or Visibility()

    @cached_property
    def no_userns(self) -> bool:
        """Whether this bwrap keeps the agent from making user namespaces (`--disable-userns`, bwrap 0.8.0
        on; checked once)."""
        try:
            done = subprocess.run(
                [self.path, *USERNS_DISABLED, "--ro-bind", "/", "/", "true"],
                capture_output=True,
                timeout=10,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def visibility(self, spec: RunSpec) -> Visibility:
        """The configured masks, resolved and limited to what exists now (bwrap cannot mount on nothing),
        and the CLI's install bound back read-only. Nothing else comes back: a PATH directory under the
        service's HOME (a pyenv shim, say) would come back half-working and shadow the system's tool."""
        found = [_as_found(d) for d in self.hidden.hidden_dirs]
        dirs = dict.fromkeys(path for path, is_dir in filter(None, found) if is_dir)
        found = [_as_found(f) for f in self.hidden.hidden_files]
        files = dict.fromkeys(path for path, is_dir in filter(None, found) if not is_dir)
        path = spec.env.get("PATH", "")
        program = spec.argv[0] if os.path.isabs(spec.argv[0]) else which(spec.argv[0], path=path)
        readable = [*(program_roots(program) if program else []), *self.hidden.readable]
        if spec.mcp_config is not None:  # the one file of the run directory the CLI reads
            readable.append(spec.run_dir / MCP_CONFIG_FILE)
        return Visibility(tuple(dirs), tuple(files), tuple(p for p in readable if os.path.exists(p)))

    def wrap(self, spec: RunSpec, network: Relay | None = None, seccomp_fd: int | None = None) -> list[str]:
        return bwrap_argv(
            self.path,
            spec,
            as_root=self.as_root,
            visibility=self.visibility(spec),
            network=network,
            no_userns=self.no_userns,
            seccomp_fd=seccomp_fd,
        )

    @cached_property
    def problem(self) -> str | None:
        """None when a trial sandbox runs here (checked once), else what is wrong."""
        if not (os.path.isfile(self.path) and os.access(self.path, os.X_OK)):
            return f"no bubblewrap at {self.path} (Debian: apt-get install bubblewrap)"
        trial = [self.path, *_privileges(self.as_root, no_userns=self.no_userns)]
        # what every agent's sandbox does: namespaces, a fresh /proc and /dev, a mask made read-only
        trial += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
        trial += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]  # noqa: S108
        trial += ["--remount-ro", "/tmp", "true"]  # noqa: S108
        try:
            done = subprocess.run(
                trial, capture_output=True, timeout=10, check=False, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap does not run here: {exc}"
        if done.returncode != 0:
            return f"bubblewrap does not run here: {done.stderr.decode(errors='replace').strip()[:300]}"
        return None
