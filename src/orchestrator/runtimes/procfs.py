"""Finding and killing every process of an agent, also those that left its process group."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from collections.abc import Callable, Collection
from pathlib import Path

MARKER_VARIABLE = "ORCHESTRATOR_AGENT_ID"
_PROC = Path("/proc")


def marker_entry(agent_id: str) -> bytes:
    return f"{MARKER_VARIABLE}={agent_id}".encode()


def _environ(pid: int) -> bytes:
    """A process's environment as the kernel shows it; empty when it cannot be read. Plain descriptors, not
    file objects: a sweep reads this for every process on the host."""
    try:
        fd = os.open(f"/proc/{pid}/environ", os.O_RDONLY)
    except OSError:
        return b""
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _has_marker(pid: int, entry: bytes) -> bool:
    """`entry` is one whole NUL-separated entry of the environment (also the last, unterminated one)."""
    return b"\0" + entry + b"\0" in b"\0" + _environ(pid) + b"\0"


def is_running(pid: int, agent_id: str) -> bool:
    """Alive and still the agent's process (not a zombie, not a reused pid)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0] if ")" in stat else "?"
    return state not in ("Z", "X") and _has_marker(pid, marker_entry(agent_id))


def marked_pids(agent_id: str) -> list[int]:
    entry = marker_entry(agent_id)
    own = os.getpid()
    found = []
    for name in os.listdir(_PROC):
        if name.isdigit() and int(name) != own and _has_marker(int(name), entry):
            found.append(int(name))
    return found


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_marked(agent_id: str, rounds: int = 3, wait_seconds: float = 0.0) -> int:
    """SIGKILLs every process carrying the agent's marker (`kill_found`)."""
    return kill_found(lambda: marked_pids(agent_id), rounds, wait_seconds)


def kill_found(find: Callable[[], Collection[int]], rounds: int = 3, wait_seconds: float = 0.0) -> int:
    """SIGKILLs every process `find` names; a few rounds catch forks made meanwhile. With `wait_seconds`,
    it goes on until none is left (or they pass): a killed process of a low-priority session may wait
    for a CPU before it is gone. How many were signalled."""
    killed = 0
    give_up = time.monotonic() + wait_seconds
    for round_ in itertools.count(1):
        pids = find()
        if not pids or (round_ > rounds and time.monotonic() >= give_up):
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        if round_ >= rounds and time.monotonic() < give_up:
            time.sleep(0.01)
    return killed
