"""EVENT_DIR as an inbox for agents without network: one JSON file per event, ingested once.

A file is stored as an event under an id derived from its name (so a crash between storing and
moving it aside stores nothing twice), then moved to `ingested/`; a malformed file goes to
`quarantine/` beside a `.error` file that says what is wrong."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.models import EventCreate
from orchestrator.store.events import EventStore

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,150}\.json$")
MAX_FILE_BYTES = 1_000_000


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
        while True:
            await asyncio.to_thread(self.scan)
            await asyncio.sleep(self._poll)

    def scan(self) -> int:
        if not self._dir.is_dir():
            return 0
        count = 0
        for path in sorted(self._dir.iterdir()):
            if path.is_file() and _NAME.match(path.name):
                self._ingest(path)
                count += 1
        return count

    def _ingest(self, path: Path) -> None:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"file larger than {MAX_FILE_BYTES} bytes")
            data: Any = json.loads(path.read_bytes())
            body = EventCreate.model_validate(data)
        except (ValueError, ValidationError, UnicodeDecodeError) as exc:
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
        reason = str(exc).replace("\n", " ")[:2000]
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
