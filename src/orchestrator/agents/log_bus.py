"""In-process fan-out of stored log lines and agent endings to live readers (SSE).

Each reader has a bounded queue. A reader that falls behind is marked lagged and dropped from
the fan-out; it catches up from the store by id, so a slow reader costs bounded memory and never
slows the others."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LogItem:
    id: int
    timestamp: str
    stream: str
    content: str


@dataclass(frozen=True, slots=True)
class EndItem:
    status: str
    agent: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FlagItem:
    name: str
    detail: str


BusItem = LogItem | EndItem | FlagItem


class Subscription:
    def __init__(self, bus: LogBus, agent_id: str, maxsize: int) -> None:
        self._bus = bus
        self.agent_id = agent_id
        self.queue: asyncio.Queue[BusItem] = asyncio.Queue(maxsize)
        self.lagged = False

    def offer(self, item: BusItem) -> None:
        if self.lagged:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.lagged = True

    def resync(self) -> None:
        """Called by a lagged reader once it has re-read the store: empty the queue and listen again."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.lagged = False

    def close(self) -> None:
        self._bus.unsubscribe(self)


class LogBus:
    def __init__(self, queue_size: int = 2000) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._queue_size = queue_size
        self._first_reader: Callable[[str], None] | None = None

    def on_first_reader(self, listener: Callable[[str], None]) -> None:
        """`listener(agent_id)` when an agent that had no live reader gets one (its supervisor then reads
        its output now, not at the end of its unwatched wait)."""
        self._first_reader = listener

    def subscribe(self, agent_id: str) -> Subscription:
        first = agent_id not in self._subs
        sub = Subscription(self, agent_id, self._queue_size)
        self._subs[agent_id].add(sub)
        if first and self._first_reader is not None:
            self._first_reader(agent_id)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.agent_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.agent_id]

    def has_readers(self, agent_id: str) -> bool:
        return agent_id in self._subs

    def publish(self, agent_id: str, item: BusItem) -> None:
        for sub in tuple(self._subs.get(agent_id, ())):
            sub.offer(item)

    @property
    def reader_count(self) -> int:
        return sum(len(s) for s in self._subs.values())
