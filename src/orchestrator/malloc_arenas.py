"""Fewer malloc arenas in the service's process. glibc gives threads that allocate at once arenas of their
own (up to 8 per core), each keeping what was freed in it; the service's worker threads take turns on the
GIL anyway, so two arenas cost no waiting and keep its memory about a megabyte lower."""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def limit_arenas() -> bool:
    """True when the C library took the limit; the operator's MALLOC_ARENA_MAX (which glibc reads itself)
    is left alone, and a C library without mallopt is not asked."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, ARENAS))
