"""An agent's log for a reader: a page of stored lines, or a live follow that reads the backlog from the
store, then takes new lines from the bus (from the store when another instance runs the agent), and
ends with the agent. Line ids dedupe the overlap and let a reader resume where it stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.agents.log_bus import EndItem, FlagItem, LogBus, LogItem
from orchestrator.domain.types import AgentStatus
from orchestrator.errors import Invalid
from orchestrator.store.agents import AgentRow, AgentStore
from orchestrator.store.logs import LogStore

MAX_LINE_ID = 2**63 - 1  # the largest integer a database column holds
_PAGE = 1000
_LOCAL_WAIT_SECONDS = 1.0
_REMOTE_POLL_SECONDS = 0.1

LiveItem = LogItem | FlagItem | EndItem


@dataclass(frozen=True)
class LogRows:
    lines: list[dict[str, Any]]
    next_after: int
    has_more: bool


def resume_cursor(last_event_id: str) -> int:
    """The line id a reader's `Last-Event-ID` names."""
    cursor = last_event_id.strip()
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 19 or int(cursor) > MAX_LINE_ID:
        raise Invalid("must be a log line id", field="Last-Event-ID")
    return int(cursor)


def _line(item: dict[str, Any]) -> LogItem:
    return LogItem(id=item["id"], timestamp=item["timestamp"], stream=item["stream"], content=item["content"])


def _ended(row: AgentRow) -> EndItem:
    return EndItem(status=row["status"], agent=row)


class LiveLog:
    def __init__(
        self, logs: LogStore, agents: AgentStore, bus: LogBus, supervises: Callable[[str], bool]
    ) -> None:
        self._logs = logs
        self._agents = agents
        self._bus = bus
        self._supervises = supervises

    def page(self, agent_id: str, after: int, limit: int) -> LogRows:
        rows = self._logs.after(agent_id, after, limit + 1)
        lines = rows[:limit]
        return LogRows(lines, lines[-1]["id"] if lines else after, len(rows) > limit)

    async def follow(
        self, agent_id: str, start: int, gone: Callable[[], Awaitable[bool]]
    ) -> AsyncGenerator[LiveItem]:
        """Lines after `start`, flags, and the agent's end; stops early once `gone()` says the reader left."""
        sub = self._bus.subscribe(agent_id)
        last = start

        async def catch_up() -> AsyncIterator[LogItem]:
            nonlocal last
            while True:
                batch = await asyncio.to_thread(self._logs.after, agent_id, last, _PAGE)
                for item in batch:
                    yield _line(item)
                    last = item["id"]
                if len(batch) < _PAGE:
                    return

        try:
            async for line in catch_up():
                yield line
            row = self._agents.get(agent_id)
            if row is None:
                return
            if AgentStatus(row["status"]).is_terminal:
                yield _ended(row)
                return
            while True:
                if sub.lagged:
                    sub.resync()
                    async for line in catch_up():
                        yield line
                    continue
                local = self._supervises(agent_id)
                try:
                    wait = _LOCAL_WAIT_SECONDS if local else _REMOTE_POLL_SECONDS
                    bus_item = await asyncio.wait_for(sub.queue.get(), wait)
                except TimeoutError:
                    if await gone():
                        return
                    if not local:
                        async for line in catch_up():
                            yield line
                        row = await asyncio.to_thread(self._agents.get, agent_id)
                        if row is not None and AgentStatus(row["status"]).is_terminal:
                            async for line in catch_up():
                                yield line
                            yield _ended(row)
                            return
                    continue
                if isinstance(bus_item, LogItem):
                    if bus_item.id > last:
                        yield bus_item
                        last = bus_item.id
                elif isinstance(bus_item, FlagItem):
                    yield bus_item
                elif isinstance(bus_item, EndItem):
                    async for line in catch_up():
                        yield line
                    yield bus_item
                    return
        finally:
            sub.close()
