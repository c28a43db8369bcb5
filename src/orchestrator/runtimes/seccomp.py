"""The seccomp filter the sandbox loads for agents: `clone3` answers ENOSYS, so the C library falls back
to `clone` (as under Docker's default profile). `clone3` can start a child in another cgroup
(CLONE_INTO_CGROUP) through a descriptor opened on the read-only /sys: on cgroup v2 an agent would leave
its group, and its limits, that way. The filter is classic BPF, handed to bwrap on a descriptor."""

from __future__ import annotations

import os
import struct

_CLONE3 = 435  # the same number on every architecture's table
_X32 = 0x40000000  # the x32 ABI's numbers carry this bit
_ENOSYS = 38
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
_LD_W_ABS, _JEQ_K, _RET_K = 0x20, 0x15, 0x06


def _instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


PROGRAM = b"".join(
    [
        _instruction(_LD_W_ABS, 0, 0, 0),  # the syscall's number (seccomp_data.nr)
        _instruction(_JEQ_K, 2, 0, _CLONE3),
        _instruction(_JEQ_K, 1, 0, _X32 | _CLONE3),
        _instruction(_RET_K, 0, 0, _RET_ALLOW),
        _instruction(_RET_K, 0, 0, _RET_ERRNO | _ENOSYS),
    ]
)


def program_fd() -> int:
    """A descriptor, at its start, on a fresh copy of the filter (bwrap reads it to its end)."""
    fd = os.memfd_create("agent-seccomp", os.MFD_CLOEXEC)
    try:
        os.write(fd, PROGRAM)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd
