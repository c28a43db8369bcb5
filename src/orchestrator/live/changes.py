"""The change feed: one look at the store per interval for every reader of this instance together, the
changes it finds numbered and kept in a ring, and handed to each reader's bounded queue.

A change made by another instance reaches this one through the store, like any other. A reader that
comes back with the id of the last message it got is given what it missed from the ring, once; when
the ring no longer holds it (too old, another instance, a restart, a feed that went idle and lost the
thread) it is told to `reset`: re-read what it shows. The feed looks only while it has readers, and
for `linger` seconds after the last one left, so a reader reconnecting meanwhile resumes exactly."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orchestrator.domain.changes import Change, Cursor, differences, parse_cursor
from orchestrator.errors import Throttled
from orchestrator.store.changes import OPEN_AGENTS, OPEN_EVENTS, OPEN_QUEUE, ChangeStore, Look, Looks

log = logging.getLogger(__name__)

MAX_ASKED = 500  # rows looked up by id per kind and look; past it a vanished row waits for the page's re-read


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the stream: a change, or `ready` (the cursor to come back with) or `reset`."""

    kind: str  # change | ready | reset
    cursor: Cursor
    change: Change | None = None


class Reader:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue(size)
        self.lagged = False

    def offer(self, message: Message) -> None:
        if self.lagged:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.lagged = True


def _iso_ago(seconds: float) -> str:
    return (
        (datetime.now(UTC) - timedelta(seconds=seconds))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class ChangeFeed:
    def __init__(
        self,
        store: ChangeStore,
        *,
        interval: float,
        max_readers: int,
        window: float = 60.0,
        linger: float = 120.0,
        ring: int = 4096,
        reader_queue: int = 1000,
        change_counter: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._store = store
        self.interval = interval
        self.max_readers = max_readers
        self._window = window
        self._linger = linger
        self._ring: deque[tuple[int, Change]] = deque(maxlen=ring)
        self._reader_queue = reader_queue
        self._change_counter = change_counter
        self._readers: set[Reader] = set()
        self._wanted = asyncio.Event()
        self._following = asyncio.Event()
        self._epoch = ""
        self._n = 0
        self._last: Look | None = None
        self._counter: int | None = None
        self._idle_since = time.monotonic()
        self.looks = 0  # how many times the store was read: one per interval, whatever the readers

    @property
    def reader_count(self) -> int:
        return len(self._readers)

    @property
    def head(self) -> Cursor:
        return Cursor(self._epoch, self._n)

    # ---------- the readers' side ----------
    def check_room(self) -> None:
        if len(self._readers) >= self.max_readers:
            raise Throttled(
                f"{self.max_readers} readers follow this instance's changes already (CHANGES_MAX_CLIENTS)",
                retry_after=5,
            )

    def join(self) -> Reader:
        reader = Reader(self._reader_queue)
        self._readers.add(reader)
        self._wanted.set()
        return reader

    def leave(self, reader: Reader) -> None:
        self._readers.discard(reader)
        if not self._readers:
            self._idle_since = time.monotonic()

    async def follow(self, reader: Reader, last_event_id: str | None) -> AsyncIterator[Message]:
        """The messages for one reader: what it missed (or `ready`/`reset`), then each change as found."""
        await self._following.wait()
        for message in self._resume(reader, parse_cursor(last_event_id)):
            yield message
        while True:
            message = await reader.queue.get()
            if reader.lagged:  # it fell behind: start it afresh rather than hold the others back
                while not reader.queue.empty():
                    reader.queue.get_nowait()
                reader.lagged = False
                yield Message("reset", self.head)
                continue
            yield message

    def _resume(self, reader: Reader, cursor: Cursor | None) -> list[Message]:
        """Synchronous (no await): what is in the ring now goes in this answer, later changes into the
        reader's queue, so none comes twice or not at all. `ready` when there is nothing to say."""
        while not reader.queue.empty():
            reader.queue.get_nowait()
        head = self.head
        if cursor is None:
            return [Message("ready", head)]
        oldest = self._ring[0][0] if self._ring else self._n + 1
        if cursor.epoch != self._epoch or cursor.n > self._n or cursor.n < oldest - 1:
            return [Message("reset", head)]
        missed = [
            Message("change", Cursor(self._epoch, n), change) for n, change in self._ring if n > cursor.n
        ]
        return missed or [Message("ready", head)]  # a first message either way: the reader knows it is back

    # ---------- the looking side ----------
    async def run(self) -> None:
        """The one loop per instance: looks while there are readers (and `linger` seconds after)."""
        while True:
            await self._wanted.wait()
            if not self._following.is_set():
                await self._start()
            await asyncio.sleep(self.interval)
            if not self._readers and time.monotonic() - self._idle_since > self._linger:
                self._stop()
                continue
            try:
                await self._look()
            except Exception:  # a store hiccup: the next interval tries again
                log.warning("change feed: the store could not be read", exc_info=True)

    async def _start(self) -> None:
        while True:
            try:
                self._last = await asyncio.to_thread(self._read, None)
                break
            except Exception:
                log.warning("change feed: the store could not be read", exc_info=True)
                await asyncio.sleep(self.interval)
        self._epoch = secrets.token_hex(6)
        self._n = 0
        self._ring.clear()
        self._following.set()

    def _stop(self) -> None:
        self._following.clear()
        self._wanted.clear()
        self._last = None
        self._counter = None
        self._ring.clear()
        self._epoch = ""

    def _read(self, last: Look | None) -> Look:
        self.looks += 1
        return self._store.look(
            _iso_ago(self._window),
            after_seq=last.max_seq if last is not None else None,
            agent_ids=_asked(last.agents, OPEN_AGENTS) if last is not None else frozenset(),
            queue_ids=_asked(last.queue, OPEN_QUEUE) if last is not None else frozenset(),
            event_ids=_asked(last.events, OPEN_EVENTS) if last is not None else frozenset(),
        )

    async def _look(self) -> None:
        counter = self._change_counter()
        if counter is not None and counter == self._counter:
            return  # nothing committed since the last look (SQLite tells for free)
        last = self._last
        fresh = await asyncio.to_thread(self._read, last)
        self._counter = counter
        self._last = fresh
        if last is None:
            return
        for change in changes_between(last, fresh):
            self._n += 1
            self._ring.append((self._n, change))
            message = Message("change", Cursor(self._epoch, self._n), change)
            for reader in tuple(self._readers):
                reader.offer(message)


def changes_between(last: Look, fresh: Look) -> list[Change]:
    """What differs from one look to the next: events first (a task's story in order), then agents,
    tasks, queue items and the queue's settings."""
    out = [
        *differences(
            "event", last.events, fresh.events, asked=_asked(last.events, OPEN_EVENTS), task_of=fresh.task_of
        ),
        *differences(
            "agent", last.agents, fresh.agents, asked=_asked(last.agents, OPEN_AGENTS), task_of=fresh.task_of
        ),
        *differences("task", last.tasks, fresh.tasks),
        *differences(
            "queue", last.queue, fresh.queue, asked=_asked(last.queue, OPEN_QUEUE), task_of=fresh.task_of
        ),
    ]
    if last.settings != fresh.settings:
        out.append(Change("settings", "queue", "changed"))
    return out


def _asked(looks: Looks, open_statuses: tuple[str, ...]) -> frozenset[str]:
    """The rows open at the last look, looked up by id at the next so that one that left is seen."""
    return frozenset(sorted(k for k, v in looks.items() if v[0] in open_statuses)[:MAX_ASKED])
