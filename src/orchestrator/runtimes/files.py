"""The run directory's output files, read by byte offset: what makes every runtime re-attachable.

Whatever runs the agent (a host process, a container writing through a bind mount, a thread following
pod logs) appends to `<run_dir>/stdout` and `<run_dir>/stderr`; the service reads them from the last
stored offset on, also after a restart. `exit_code` is written once the agent's main process ended.

An agent that can write where these files are may have swapped one for a link to a file of the
service's, or for a FIFO that would block the reader: they are opened without following links and
without blocking, and read only if they are regular files.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from orchestrator.domain.types import LogStream

EXIT_CODE_FILE = "exit_code"


def create(run_dir: Path) -> None:
    """Empty output files for a new run (a stale exit code of an earlier run in the same dir goes)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for stream in (LogStream.STDOUT, LogStream.STDERR):
        fd = os.open(run_dir / stream.value, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        (run_dir / EXIT_CODE_FILE).unlink()


_EXIT_CODE_MAX_BYTES = 32


def open_regular(path: Path) -> int | None:
    """A read-only descriptor on `path` if it is a regular file (not a link, FIFO, device), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def recorded_exit_code(run_dir: Path) -> int | None:
    fd = open_regular(run_dir / EXIT_CODE_FILE)
    if fd is None:
        return None
    try:
        raw = os.pread(fd, _EXIT_CODE_MAX_BYTES + 1, 0)
        return int(raw.decode("ascii").strip()) if len(raw) <= _EXIT_CODE_MAX_BYTES else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


class OutputFiles:
    """pread on the output files; a file that is not there yet reads as empty."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._fds: dict[LogStream, int] = {}

    def read(self, stream: LogStream, offset: int, max_bytes: int) -> bytes:
        """A file that is missing, a link or not a regular file reads as empty."""
        fd = self._fds.get(stream)
        if fd is None:
            fd = open_regular(self.run_dir / stream.value)
            if fd is None:
                return b""
            self._fds[stream] = fd
        return os.pread(fd, max_bytes, offset)

    def exit_code(self) -> int | None:
        return recorded_exit_code(self.run_dir)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
