"""An agent's live log on a real SQLite store and a real bus: backlog, resume by line id, live lines
deduped against the backlog, flags, the end, and a reader that leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from orchestrator.agents.live_log import LiveItem, LiveLog
from orchestrator.agents.log_bus import EndItem, FlagItem, LogBus, LogItem
from orchestrator.domain.types import AgentStatus
from orchestrator.store.agents import AgentStore
from orchestrator.store.db import Database
from orchestrator.store.logs import LogStore, NewLine, Progress

AGENT = "coding-00000001"
STAMP = "2026-12-02T00:00:00.000Z"


def _setup(path: Path) -> tuple[AgentStore, LogStore, list[int]]:
    db = Database(f"sqlite:///{path}")
    db.migrate()
    agents = AgentStore(db)
    agents.insert(
        {
            "id": AGENT,
            "agent_type": "coding",
            "prompt": "p",
            "instance_id": "me",
            "timeout_seconds": 60,
            "max_turns": 5,
            "runtime": "host",
        }
    )
    assert agents.move(AGENT, AgentStatus.RUNNING)
    logs = LogStore(db)
    lines = [NewLine(AGENT, STAMP, "stdout", f"line {n}") for n in range(3)]
    _, ids, _ = logs.append(lines, [Progress(AGENT, 30, 0, 3)], "me")
    return agents, logs, ids


async def _never_gone() -> bool:
    return False


async def _gone() -> bool:
    return True


async def _read(
    live: LiveLog, start: int, gone: Callable[[], Awaitable[bool]] = _never_gone
) -> list[LiveItem]:
    return [item async for item in live.follow(AGENT, start, gone)]


def _contents(items: list[LiveItem]) -> list[str]:
    return [i.content for i in items if isinstance(i, LogItem)]


def test_an_ended_agent_gives_its_backlog_then_its_end(tmp_path: Path) -> None:
    agents, logs, ids = _setup(tmp_path / "o.db")
    assert agents.move(AGENT, AgentStatus.COMPLETED)
    live = LiveLog(logs, agents, LogBus(), lambda _: False)
    items = asyncio.run(_read(live, 0))
    assert _contents(items) == ["line 0", "line 1", "line 2"]
    assert isinstance(items[-1], EndItem) and items[-1].status == AgentStatus.COMPLETED
    resumed = asyncio.run(_read(live, ids[1]))
    assert _contents(resumed) == ["line 2"] and isinstance(resumed[-1], EndItem)


def test_live_lines_follow_the_backlog_once_each_until_the_end(tmp_path: Path) -> None:
    agents, logs, ids = _setup(tmp_path / "o.db")
    bus = LogBus()
    live = LiveLog(logs, agents, bus, lambda _: True)

    async def scenario() -> list[LiveItem]:
        reader = asyncio.create_task(_read(live, 0))
        while not bus.has_readers(AGENT):
            await asyncio.sleep(0.01)
        bus.publish(AGENT, LogItem(ids[2], STAMP, "stdout", "line 2"))  # already read from the store
        bus.publish(AGENT, FlagItem("stalled", "no output"))
        bus.publish(AGENT, LogItem(ids[2] + 1, STAMP, "stdout", "line 3"))
        bus.publish(AGENT, EndItem("completed", {"id": AGENT, "status": "completed"}))
        return await asyncio.wait_for(reader, 10)

    items = asyncio.run(scenario())
    assert _contents(items) == ["line 0", "line 1", "line 2", "line 3"]
    assert [i.name for i in items if isinstance(i, FlagItem)] == ["stalled"]
    assert isinstance(items[-1], EndItem) and not bus.has_readers(AGENT)


def test_a_reader_that_left_is_let_go(tmp_path: Path) -> None:
    agents, logs, _ = _setup(tmp_path / "o.db")
    bus = LogBus()
    live = LiveLog(logs, agents, bus, lambda _: True)
    items = asyncio.run(asyncio.wait_for(_read(live, 0, _gone), 10))
    assert _contents(items) == ["line 0", "line 1", "line 2"]
    assert not any(isinstance(i, EndItem) for i in items) and not bus.has_readers(AGENT)


def test_a_page_says_where_to_go_on(tmp_path: Path) -> None:
    agents, logs, ids = _setup(tmp_path / "o.db")
    live = LiveLog(logs, agents, LogBus(), lambda _: True)
    first = live.page(AGENT, 0, 2)
    assert [r["content"] for r in first.lines] == ["line 0", "line 1"]
    assert (first.next_after, first.has_more) == (ids[1], True)
    last = live.page(AGENT, first.next_after, 2)
    assert [r["content"] for r in last.lines] == ["line 2"] and not last.has_more
    assert live.page(AGENT, last.next_after, 2).next_after == last.next_after
