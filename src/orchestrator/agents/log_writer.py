"""The log pipeline's middle: lines from every agent are batched, stored in one transaction with
their read offsets, then published to live readers with their ids."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.agents.log_bus import LogBus, LogItem
from orchestrator.store.logs import LogStore, NewLine, Progress

log = logging.getLogger(__name__)

_RETRY_FIRST_SECONDS = 0.1
_RETRY_MAX_SECONDS = 5.0
DRAIN_SECONDS = 15.0


@dataclass
class _Batch:
    lines: list[NewLine]
    progress: dict[str, Progress]


class LogWriter:
    def __init__(
        self,
        store: LogStore,
        bus: LogBus,
        *,
        flush_interval: float,
        max_lines: int,
        owner: str,
        high_water: int = 50_000,
    ) -> None:
        self._owner = owner
        self.on_lost: Callable[[str], None] = lambda _agent_id: None
        self._store = store
        self._bus = bus
        self._flush_interval = flush_interval
        self._max_lines = max_lines
        self._high_water = high_water
        self._batch = _Batch([], {})
        self._wake = asyncio.Event()
        self._now = asyncio.Event()  # the next flush starts without its pause: max_lines wait, or a barrier
        self._room = asyncio.Event()
        self._room.set()
        self._added = 0
        self._stored = 0
        self._stored_changed = asyncio.Condition()
        self._flushing = asyncio.Lock()
        self.lines_written = 0
        self.failed_flushes = 0

    def add(self, lines: list[NewLine], progress: Progress) -> None:
        if not lines and progress.agent_id in self._batch.progress:
            previous = self._batch.progress[progress.agent_id]
            if (previous.stdout_offset, previous.stderr_offset) == (
                progress.stdout_offset,
                progress.stderr_offset,
            ):
                return
        self._batch.lines.extend(lines)
        earlier = self._batch.progress.get(progress.agent_id)
        added = progress.lines_added + (earlier.lines_added if earlier else 0)
        # offsets never go back (a hook's lines come with none: agents/hooks.py)
        out, err = progress.stdout_offset, progress.stderr_offset
        if earlier is not None:
            out, err = max(out, earlier.stdout_offset), max(err, earlier.stderr_offset)
        self._batch.progress[progress.agent_id] = Progress(progress.agent_id, out, err, added)
        self._added += 1
        if len(self._batch.lines) >= self._max_lines:
            self._now.set()
        if len(self._batch.lines) >= self._high_water:
            self._room.clear()
        self._wake.set()

    async def room(self) -> None:
        """Waits while too many lines are waiting to be stored (the files keep the rest)."""
        await self._room.wait()

    async def barrier(self) -> None:
        """Waits until everything added so far is stored, by a flush that starts without the pause
        between flushes (that pause gathers a stream of lines; a run's end has no more to come)."""
        target = self._added
        if self._batch.lines or self._batch.progress:  # else what it waits for is being stored already
            self._now.set()
        async with self._stored_changed:
            await self._stored_changed.wait_for(lambda: self._stored >= target)

    async def run(self) -> None:
        """Flushes as soon as something waits, but starts a flush at most every `flush_interval` unless
        `max_lines` lines wait or a barrier waits: a lone line is stored at once, a stream of them in few
        transactions."""
        loop = asyncio.get_running_loop()
        last_start = float("-inf")
        while True:
            await self._wake.wait()
            pause = last_start + self._flush_interval - loop.time()
            if pause > 0 and not self._now.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._now.wait(), pause)
            last_start = loop.time()
            await self.flush_once()

    async def flush_once(self) -> None:
        """Stores what waits, one flush at a time (so offsets are never written out of order); on any
        error the batch is kept and tried again: a line read from an agent is stored or still waiting."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        self._wake.clear()
        self._now.clear()
        batch, target = self._batch, self._added
        if not batch.lines and not batch.progress:
            return
        self._batch = _Batch([], {})
        delay = _RETRY_FIRST_SECONDS
        while True:
            try:
                stored, ids, lost = await asyncio.to_thread(
                    self._store.append, batch.lines, list(batch.progress.values()), self._owner
                )
                break
            except Exception as exc:
                self.failed_flushes += 1
                log.warning(
                    "storing %d log lines failed, retrying in %.1f s: %r", len(batch.lines), delay, exc
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_SECONDS)
        self.lines_written += len(ids)
        for agent_id in lost:
            log.warning("agent %s was taken over by another instance: no longer writing its lines", agent_id)
            self.on_lost(agent_id)
        for line, line_id in zip(stored, ids, strict=True):
            if self._bus.has_readers(line.agent_id):
                self._bus.publish(line.agent_id, LogItem(line_id, line.timestamp, line.stream, line.content))
        if len(self._batch.lines) < self._high_water:
            self._room.set()
        async with self._stored_changed:
            self._stored = max(self._stored, target)
            self._stored_changed.notify_all()

    async def drain(self, within: float = DRAIN_SECONDS) -> bool:
        """Stores what waits, for `within` seconds at most (a database that is down must not hold up a
        shutdown; what is left stays in the agents' output files, read again from the stored offsets).
        True when everything was stored."""
        try:
            async with asyncio.timeout(within):
                while self._batch.lines or self._batch.progress:
                    await self.flush_once()
        except TimeoutError:
            log.warning(
                "shutdown: %d log lines not stored within %.0f s; they are read again from the output "
                "files at the next start",
                len(self._batch.lines),
                within,
            )
            return False
        return True
