"""What an agent prints is read at once: on word of the write (inotify), or, where output is polled, when
the first reader follows it; a polled agent with a budget is read often, followed or not."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.support.server import Server
from tests.support.sse import events

SSE = {"Accept": "text/event-stream"}


def _printed_once_unwatched(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, line: str, inotify: bool = False, **spawn: Any
) -> tuple[Server, str]:
    """An agent that prints `line` at 9.5 s and then sleeps, with a 5 s unwatched poll; returned once it
    has printed. Polled and unwatched, its supervisor looks at about 4.1, 8.2, 13.2 s...: the line would
    wait until 13.2 s to be read."""
    script = tmp_path / "claude"
    script.write_text(f"#!/bin/sh\nsleep 9.5\necho {line}\ntouch printed\nexec sleep 120\n")
    script.chmod(0o755)
    server: Server = make_server(
        CLAUDE_BIN=str(script), OUTPUT_POLL_UNWATCHED_SECONDS="5", OUTPUT_INOTIFY=str(inotify).lower()
    )
    agent = server.spawn("anything", **spawn)
    printed = Path(agent["workspace"]) / "printed"  # the sandbox hides /tmp; the workspace is the agent's
    deadline = time.monotonic() + 60
    while not printed.exists():
        assert time.monotonic() < deadline, "the agent never printed"
        time.sleep(0.05)
    return server, str(agent["id"])


def test_a_new_reader_gets_the_printed_line_without_waiting_out_the_unwatched_poll(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path
) -> None:
    server, agent_id = _printed_once_unwatched(make_server, tmp_path, "hello-reader")
    assert server.logs(agent_id) == [], "the line was read before anyone followed: nothing is tested"
    start = time.monotonic()
    with server.client.stream("GET", f"/api/agents/{agent_id}/logs", headers=SSE, timeout=30) as answer:
        first = next(events(answer))
    waited = time.monotonic() - start
    assert first.event == "log" and "hello-reader" in str(first.data)
    assert waited < 2.5, f"the reader waited {waited:.1f} s: the supervisor was not woken"
    server.client.post(f"/api/agents/{agent_id}/kill")


def test_an_agent_with_a_budget_is_read_often_while_nobody_follows_it(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path
) -> None:
    server, agent_id = _printed_once_unwatched(make_server, tmp_path, "spending", budget={"usd": 5})
    start = time.monotonic()
    while not any("spending" in line["content"] for line in server.logs(agent_id)):
        assert time.monotonic() - start < 2.5, "the budgeted agent's output waited for the unwatched poll"
        time.sleep(0.05)
    server.client.post(f"/api/agents/{agent_id}/kill")


def test_a_printed_line_is_read_at_once_on_word_of_the_write(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path
) -> None:
    server, agent_id = _printed_once_unwatched(make_server, tmp_path, "heard", inotify=True)
    start = time.monotonic()
    while not any("heard" in line["content"] for line in server.logs(agent_id)):
        assert time.monotonic() - start < 2.5, "the line waited for the unwatched poll"
        time.sleep(0.05)
    server.client.post(f"/api/agents/{agent_id}/kill")
