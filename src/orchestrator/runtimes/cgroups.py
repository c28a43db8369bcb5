"""Memory, CPU and process limits for host agents through cgroup directories, as far as the host allows.

One directory per agent and controller, named after the agent so that a restarted service finds it:
cgroup v1 `/sys/fs/cgroup/<controller>/orchestrator/<agent_id>`, cgroup v2
`/sys/fs/cgroup/orchestrator/<agent_id>`. The agent's wrapper shell joins them (writes its pid to each
`cgroup.procs`) before it starts the CLI, so every process of the agent is inside from its first
instruction. Creating them needs root (or a delegated subtree); without it the limits are not applied and
`create` says why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.runtimes.base import Limits

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
GROUP = "orchestrator"
CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class Groups:
    dirs: list[Path]
    problem: str | None = None

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]


def _is_v2(root: Path) -> bool:
    return (root / "cgroup.controllers").is_file()


def held_by_read_only_sys(root: Path = ROOT) -> bool:
    """Whether a process that sees /sys read-only and has no capability cannot put a process outside its
    group: on cgroup v1. On v2 it can start a child in any group it may write to (clone3's
    CLONE_INTO_CGROUP checks the group's file, not the read-only mount it was opened through)."""
    return not _is_v2(root)


def _settings_v1(limits: Limits) -> dict[str, dict[str, str]]:
    wanted: dict[str, dict[str, str]] = {}
    if limits.memory_bytes is not None:
        wanted["memory"] = {
            "memory.limit_in_bytes": str(limits.memory_bytes),
            "memory.memsw.limit_in_bytes": str(limits.memory_bytes),  # no swap beyond it, where accounted
        }
    if limits.cpus is not None:
        wanted["cpu"] = {
            "cpu.cfs_period_us": str(CPU_PERIOD_US),
            "cpu.cfs_quota_us": str(max(1000, int(limits.cpus * CPU_PERIOD_US))),
        }
    if limits.pids is not None:
        wanted["pids"] = {"pids.max": str(limits.pids)}
    return wanted


def _settings_v2(limits: Limits) -> dict[str, str]:
    wanted = {}
    if limits.memory_bytes is not None:
        wanted["memory.max"] = str(limits.memory_bytes)
        wanted["memory.swap.max"] = "0"
    if limits.cpus is not None:
        wanted["cpu.max"] = f"{max(1000, int(limits.cpus * CPU_PERIOD_US))} {CPU_PERIOD_US}"
    if limits.pids is not None:
        wanted["pids.max"] = str(limits.pids)
    return wanted


def paths(agent_id: str, root: Path = ROOT) -> list[Path]:
    """Where the agent's groups are (or would be) on this host."""
    if _is_v2(root):
        return [root / GROUP / agent_id]
    return [root / ctrl / GROUP / agent_id for ctrl in ("memory", "cpu", "pids")]


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _tracking_group(agent_id: str, root: Path) -> Groups:
    """With no limit asked for: on cgroup v1, as root, a group of the `pids` hierarchy with no limit, only
    so that the sweep finds every process of the agent whatever it did to its environment (a process
    cannot leave it: the sandbox sees /sys read-only and has no capability). None elsewhere: on v2 a
    group of its own would change the agent's CPU share."""
    if os.geteuid() != 0 or _is_v2(root) or not os.path.isdir(root / "pids"):
        return Groups([])
    group = root / "pids" / GROUP / agent_id
    try:
        group.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Groups([])
    return Groups([group])


def create(agent_id: str, limits: Limits, root: Path = ROOT) -> Groups:
    """The agent's groups with its limits (with none asked for, `_tracking_group`); an empty list when
    none can be made."""
    if limits.memory_bytes is None and limits.cpus is None and limits.pids is None:
        return _tracking_group(agent_id, root)
    try:
        if _is_v2(root):
            wanted_v2 = _settings_v2(limits)
            if not wanted_v2:
                return Groups([])
            parent = root / GROUP
            parent.mkdir(exist_ok=True)
            controllers = " ".join(f"+{c}" for c in ("memory", "cpu", "pids"))
            for level in (root, parent):
                with contextlib.suppress(OSError):
                    _write(level / "cgroup.subtree_control", controllers)
            group = parent / agent_id
            group.mkdir(exist_ok=True)
            for name, value in wanted_v2.items():
                if name == "memory.swap.max" and not (group / name).exists():
                    continue
                _write(group / name, value)
            return Groups([group])
        wanted = _settings_v1(limits)
        dirs = []
        for controller, values in wanted.items():
            group = root / controller / GROUP / agent_id
            group.mkdir(parents=True, exist_ok=True)
            dirs.append(group)
            for name, value in values.items():
                if name.startswith("memory.memsw.") and not (group / name).exists():
                    continue
                _write(group / name, value)
        return Groups(dirs)
    except OSError as exc:
        remove(agent_id, root, wait_seconds=0)
        problem = f"cgroup limits not applied ({exc.strerror or exc}: {exc.filename or root})"
        log.warning("agent %s: %s", agent_id, problem)
        return Groups([], problem)


def _subtree(group: Path) -> list[Path]:
    """The group and every group below it, deepest first. An agent can make groups below its own (a user
    namespace lets it mount its hierarchy) and move its processes there, out of its group's list."""
    return sorted((Path(top) for top, _dirs, _files in os.walk(group)), key=lambda p: -len(p.parts))


def members(agent_id: str, root: Path = ROOT) -> set[int]:
    """Every process in the agent's groups and the groups below them."""
    pids: set[int] = set()
    for group in (sub for g in paths(agent_id, root) if os.path.isdir(g) for sub in _subtree(g)):
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(p) for p in (group / "cgroup.procs").read_text().split())
    return pids


def remove(agent_id: str, root: Path = ROOT, wait_seconds: float = 2.0) -> bool:
    """Removes the agent's groups once its processes are gone (killed processes can take a moment to
    leave: a busy group is retried for `wait_seconds`). False if one is still there."""
    deadline = time.monotonic() + wait_seconds
    # os.path.isdir: False, not PermissionError, under a group another user made (cgroup v1's
    # `<controller>/orchestrator` of a service that ran as root, seen by one that does not)
    left = [g for g in paths(agent_id, root) if os.path.isdir(g)]
    while left:
        for group in left:
            for sub in _subtree(group):  # the groups below first: a group with groups in it stays
                with contextlib.suppress(OSError):
                    os.rmdir(sub)
        left = [g for g in left if os.path.isdir(g)]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    if left:
        log.warning("agent %s: cgroups still busy, left in place: %s", agent_id, ", ".join(map(str, left)))
    return not left
