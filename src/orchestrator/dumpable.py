"""The service's process made non-dumpable: processes of its user (agents under AGENT_SANDBOX=none) can no
longer read its /proc files (environ, mem, fds) or ptrace it. Root keeps CAP_SYS_PTRACE, so an agent
running as root is kept out only by the sandbox's own /proc."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def make_undumpable() -> bool:
    """True when the kernel took it. The flag is not inherited across exec: agents stay dumpable (and
    killable by the marker the service reads from their /proc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError as exc:
        log.warning("cannot load libc to set the service non-dumpable: %s", exc)
        return False
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_DUMPABLE, 0) failed: errno %s", ctypes.get_errno())
        return False
    return bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
