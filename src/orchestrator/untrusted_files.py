"""Reads of files an agent could have written: never through a symbolic link, only regular files, capped.

Every path component under a trusted root is opened with O_NOFOLLOW relative to its parent's descriptor,
so a link anywhere on the way (or a `..`) cannot lead outside the root; a FIFO cannot block the open, and
a sparse 100 GB file costs one read of `cap` bytes."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UntrustedFileError(OSError):
    """The file is missing, not a regular file, a link, or outside the root."""


def _parts(relative: str) -> list[str]:
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or ".." in parts or "\x00" in relative:
        raise UntrustedFileError(f"{relative!r} is not a plain relative path")
    return list(parts)


@contextlib.contextmanager
def open_dir(root: Path, relative: str | None = None) -> Iterator[int]:
    """A descriptor of `root` (its last component not a link) or of a directory beneath it."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in _parts(relative) if relative else []:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_regular(root: Path, relative: str) -> int:
    """A read-only descriptor of the regular file `relative` beneath `root`; the caller closes it."""
    *dirs, name = _parts(relative)
    try:
        with open_dir(root, "/".join(dirs) or None) as parent:
            fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
    except OSError as exc:
        raise UntrustedFileError(f"{relative}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UntrustedFileError(f"{relative}: not a regular file")
    return fd


def read_fd(fd: int, cap: int) -> bytes:
    """At most `cap` bytes from the start of `fd`."""
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        chunk = os.pread(fd, min(cap - size, 1 << 16), size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_capped(root: Path, relative: str, cap: int) -> bytes:
    fd = open_regular(root, relative)
    try:
        return read_fd(fd, cap)
    finally:
        os.close(fd)


def read_text(root: Path, relative: str, cap: int) -> str | None:
    """The first `cap` bytes of a regular file beneath `root` as text, or None if there is none."""
    try:
        return read_capped(root, relative, cap).decode(errors="replace")
    except UntrustedFileError:
        return None
