"""One service per SQLite file: an exclusive lock on a file beside it, held while the service runs.

The descriptor is not inherited by agents (os.open makes it non-inheritable), so agents that outlive a
stopped service do not keep the next one from starting."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DatabaseInUse(Exception):
    """Another service already works on this SQLite file."""


def hold(db_file: Path) -> int:
    """Takes the lock for `db_file` or raises DatabaseInUse; the lock lasts as long as the descriptor."""
    path = db_file.with_name(db_file.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatabaseInUse(
            f"{db_file} is in use by another orchestrator service (it holds {path}); several instances "
            "need PostgreSQL (DATABASE_URL=postgresql://...)"
        ) from None
    return fd
