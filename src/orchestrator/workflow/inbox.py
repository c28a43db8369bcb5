"""EVENT_DIR as an inbox for agents without network: one JSON file per event, ingested once.

A file is stored as an event under an id derived from its name (so a crash between storing and
moving it aside stores nothing twice), then moved to `ingested/`; a malformed file goes to
`quarantine/` beside a `.error` file that says what is wrong (where and what kind of error, never the
file's values). Only regular files are read (a link is left where it is, never followed), capped."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.models import EventCreate
from orchestrator.store.events import EventStore
from orchestrator.untrusted_files import read_fd

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,150}\.json$")
MAX_FILE_BYTES = 1_000_000
# A directory's change time (ctime: set by the kernel, no utime can put it back) moves by clock ticks: a
# file added in the tick of the last change may leave it as it was. An unchanged time is trusted only once
# it is this much older than the scan that saw it.
_SETTLED_NS = 1_000_000_000


class Inbox:
    def __init__(
        self, directory: Path, events: EventStore, wake: Callable[[], None], poll_seconds: float
    ) -> None:
        self._dir = directory
        self._events = events
        self._wake = wake
        self._poll = poll_seconds
        self.ingested = 0
        self.quarantined = 0

    async def run(self) -> None:
        """Scans (in a worker thread) when the directory changed since a scan; one stat a poll otherwise."""
        seen: tuple[int, int, int] | None = None
        while True:
            mark = _mark(self._dir)
            if mark is not None and mark != seen:
                started = time.time_ns()
                await asyncio.to_thread(self.scan)
                seen = mark if started - mark[2] > _SETTLED_NS else None
            await asyncio.sleep(self._poll)

    def scan(self) -> int:
        if not self._dir.is_dir():
            return 0
        count = 0
        for path in sorted(self._dir.iterdir()):
            if _NAME.match(path.name) and _is_regular(path):
                self._ingest(path)
                count += 1
        return count

    def _ingest(self, path: Path) -> None:
        try:
            data: Any = json.loads(_read(path))
            body = EventCreate.model_validate(data)
        except (ValueError, ValidationError, UnicodeDecodeError, OSError) as exc:
            self._quarantine(path, exc)
            return
        event_id = body.id or f"inbox-{path.stem}"
        _, created = self._events.create(event_id, body.type.value, body.task_id, body.agent_id, body.payload)
        self._move(path, "ingested")
        self.ingested += 1
        if created:
            self._wake()
        log.info("inbox file %s ingested as event %s", path.name, event_id)

    def _quarantine(self, path: Path, exc: Exception) -> None:
        reason = _reason(exc)
        target = self._move(path, "quarantine")
        target.with_name(target.name + ".error").write_text(reason + "\n")
        self.quarantined += 1
        log.warning("inbox file %s quarantined: %s", path.name, reason)

    def _move(self, path: Path, folder: str) -> Path:
        target_dir = self._dir / folder
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        n = 1
        while target.exists():
            target = target_dir / f"{path.stem}.{n}{path.suffix}"
            n += 1
        path.rename(target)
        return target


def _mark(directory: Path) -> tuple[int, int, int] | None:
    """What changes when an entry is added to, renamed in or removed from the directory; None: no such
    directory."""
    try:
        info = os.stat(directory)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_ctime_ns


def _is_regular(path: Path) -> bool:
    """A regular file itself, not a link to one (links, FIFOs, devices and directories are left alone)."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _read(path: Path) -> bytes:
    """The file's bytes: not through a link, a regular file only, at most MAX_FILE_BYTES."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("a symbolic link: not followed") from None
        raise ValueError(f"cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        data = read_fd(fd, MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"file larger than {MAX_FILE_BYTES} bytes")
    return data


def _reason(exc: Exception) -> str:
    """What is wrong and where, without repeating any value of the file."""
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['type']}" for e in exc.errors()[:20]]
        return "invalid event: " + "; ".join(parts)
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: {exc.reason} at byte {exc.start}"
    return str(exc).replace("\n", " ")[:500]
