"""Live logs over SSE: backlog, then lines as they are printed, resumable without gap or duplicate."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import TEST_PG, ServerFactory, fresh_postgres_database
from tests.support import fake_anthropic as fm
from tests.support.server import Server
from tests.support.sse import events

SSE = {"Accept": "text/event-stream"}


def _slow_scenario(fake_model: fm.FakeAnthropic) -> str:
    steps: list[fm.Step] = [
        fm.tool("Bash", {"command": f"echo step-{i}", "description": f"step {i}"}, delay=0.4)
        for i in range(5)
    ]
    return fake_model.scenario([*steps, fm.text("all steps done", delay=0.4)])


def test_sse_streams_live_and_resumes_without_gap_or_duplicate(
    server: Server, fake_model: fm.FakeAnthropic
) -> None:
    agent = server.spawn(f"steps {_slow_scenario(fake_model)}")
    url = f"/api/agents/{agent['id']}/logs"

    first: list[int] = []
    with server.client.stream("GET", url, headers=SSE, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in events(response):
            assert event.event == "log"
            first.append(int(event.id or 0))
            if len(first) == 4:
                break
    assert server.agent(agent["id"])["status"] == "running", (
        "the agent should still be running: the stream was live"
    )

    rest: list[int] = []
    end = None
    with server.client.stream(
        "GET", url, headers={**SSE, "Last-Event-ID": str(first[-1])}, timeout=60
    ) as response:
        for event in events(response):
            if event.event == "end":
                end = event.data
                break
            assert event.event == "log"
            rest.append(int(event.id or 0))
    assert end is not None and end["status"] == "completed"

    stored = [line["id"] for line in server.logs(agent["id"])]
    assert first + rest == stored
    assert len(set(first + rest)) == len(stored)


def test_sse_delivers_lines_while_the_agent_prints(server: Server, fake_model: fm.FakeAnthropic) -> None:
    agent = server.spawn(f"steps {_slow_scenario(fake_model)}")
    arrivals: list[tuple[float, str]] = []
    with server.client.stream("GET", f"/api/agents/{agent['id']}/logs", headers=SSE, timeout=60) as response:
        for event in events(response):
            arrivals.append((time.monotonic(), event.event))
            if event.event == "end":
                break
    assert arrivals[-1][1] == "end"
    log_times = [t for t, kind in arrivals if kind == "log"]
    assert log_times[-1] - log_times[0] > 1.0, "lines came all at once at the end, not live"


def test_sse_of_a_finished_agent_replays_and_ends(server: Server, fake_model: fm.FakeAnthropic) -> None:
    agent = server.wait_agent(server.spawn(f"hi {fake_model.scenario([fm.text('hello')])}")["id"])
    with server.client.stream("GET", f"/api/agents/{agent['id']}/logs", headers=SSE) as response:
        received = list(events(response))
    assert [e.event for e in received][-1] == "end"
    assert [int(e.id or 0) for e in received if e.event == "log"] == [
        ln["id"] for ln in server.logs(agent["id"])
    ]


def test_json_log_pages(server: Server, fake_model: fm.FakeAnthropic) -> None:
    agent = server.wait_agent(server.spawn(f"hi {fake_model.scenario([fm.text('hello')])}")["id"])
    everything = server.logs(agent["id"])
    page = server.client.get(f"/api/agents/{agent['id']}/logs", params={"limit": 1}).json()
    assert page["has_more"] is True and len(page["items"]) == 1
    after = server.client.get(
        f"/api/agents/{agent['id']}/logs", params={"after": page["next_after"], "limit": 5000}
    ).json()
    assert [i["id"] for i in page["items"] + after["items"]] == [i["id"] for i in everything]
    assert page["status"] == "completed"


@pytest.mark.skipif(not TEST_PG, reason="needs the tests' PostgreSQL: scripts/test starts one")
def test_sse_from_an_instance_that_does_not_supervise_the_agent(
    make_server: ServerFactory, tmp_path: Path, fake_model: fm.FakeAnthropic
) -> None:
    """On a shared PostgreSQL, another instance streams the agent's lines while it prints, every one once,
    then its end."""
    database = fresh_postgres_database()
    owner, other = (make_server(data_dir=tmp_path / f"i{n}", DATABASE_URL=database) for n in range(2))
    agent = owner.spawn(f"steps {_slow_scenario(fake_model)}")
    arrivals: list[tuple[float, str, int]] = []
    end = None
    with other.client.stream("GET", f"/api/agents/{agent['id']}/logs", headers=SSE, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in events(response):
            if event.event == "end":
                end = event.data
                break
            assert event.event == "log"
            arrivals.append((time.monotonic(), event.event, int(event.id or 0)))
    assert end is not None and end["status"] == "completed", end
    supervisor = other.agent(agent["id"])["instance_id"]
    assert supervisor == owner.client.get("/api/health").json()["instance_id"]
    assert supervisor != other.client.get("/api/health").json()["instance_id"]
    ids = [line_id for _, _, line_id in arrivals]
    assert ids == [line["id"] for line in owner.logs(agent["id"])]
    assert arrivals[-1][0] - arrivals[0][0] > 1.0, "lines came all at once at the end, not live"
