"""`GET /api/changes`: one SSE stream of the store's changes, resumable with `Last-Event-ID`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_PG, ServerFactory, fresh_postgres_database
from tests.support import fake_anthropic as fm
from tests.support.server import Server
from tests.support.sse import Event, events

SSE = {"Accept": "text/event-stream"}


def _changes(response: httpx.Response) -> Iterator[Event]:
    for event in events(response):
        assert event.event in ("ready", "change", "reset"), event
        yield event


def _until(stream: Iterator[Event], wanted: set[tuple[str, str]]) -> list[Event]:
    """Events until every (kind, id) of `wanted` has arrived as a change."""
    seen: list[Event] = []
    missing = set(wanted)
    for event in stream:
        seen.append(event)
        if event.event == "change":
            missing.discard((event.data["kind"], event.data["id"]))
        if not missing:
            return seen
    raise AssertionError(f"the stream ended before {missing}")


def test_a_change_made_through_the_api_arrives(server: Server) -> None:
    assert httpx.get(f"{server.url}/api/changes", headers=SSE).status_code == 401, "the token is needed"
    server.client.post("/api/queue/settings", json={"key": "paused", "value": True})
    with server.client.stream("GET", "/api/changes", headers=SSE, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = _changes(response)
        ready = next(stream)
        assert ready.event == "ready" and ready.id == ready.data["cursor"]
        task = server.client.post("/api/tasks", json={"title": "<b>watched</b>"}).json()
        got = _until(stream, {("task", task["id"])})
        assert [e.data["status"] for e in got if e.data.get("id") == task["id"]] == ["pending"]
        assert server.client.post(f"/api/queue/add/{task['id']}").status_code == 201
        got = _until(stream, {("task", task["id"])})
        queued = [e.data for e in got if e.event == "change"]
        assert {"kind": "task", "id": task["id"], "status": "queued", "task_id": None} in queued
        items = [c for c in queued if c["kind"] == "queue"]
        assert items == [] or items[0]["task_id"] == task["id"]
        ids = [int(e.id.rpartition(".")[2]) for e in got if e.id]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), "ids rise, one per message"


def test_a_reconnect_with_last_event_id_gets_what_it_missed_once(server: Server) -> None:
    with server.client.stream("GET", "/api/changes", headers=SSE, timeout=30) as response:
        stream = _changes(response)
        cursor = next(stream).id
        first = server.client.post("/api/tasks", json={"title": "seen live"}).json()["id"]
        got = _until(stream, {("task", first)})
        cursor = got[-1].id
    missed = [server.client.post("/api/tasks", json={"title": f"missed {n}"}).json()["id"] for n in range(3)]
    server.client.delete(f"/api/tasks/{missed[0]}")
    with server.client.stream(
        "GET", "/api/changes", headers={**SSE, "Last-Event-ID": str(cursor)}, timeout=30
    ) as response:
        stream = _changes(response)
        got = _until(stream, {("task", m) for m in missed[1:]})
        sentinel = server.client.post("/api/tasks", json={"title": "after"}).json()["id"]
        got += _until(stream, {("task", sentinel)})
    assert [e.event for e in got if e.event != "change"] in ([], ["ready"]), "resumed: no reset"
    tasks = [e.data["id"] for e in got if e.event == "change" and e.data["kind"] == "task"]
    assert first not in tasks, "nothing from before the cursor"
    for task_id in [*missed[1:], sentinel]:
        assert tasks.count(task_id) == 1, (task_id, tasks)


def test_an_unknown_cursor_is_told_to_reset(server: Server) -> None:
    for cursor in ("0123abcd.5", "nonsense"):
        with server.client.stream(
            "GET", "/api/changes", headers={**SSE, "Last-Event-ID": cursor}, timeout=30
        ) as response:
            first = next(_changes(response))
        assert first.event == ("reset" if "." in cursor else "ready")


def test_readers_past_the_cap_are_refused(make_server: ServerFactory) -> None:
    server = make_server(CHANGES_MAX_CLIENTS="1")
    with server.client.stream("GET", "/api/changes", headers=SSE, timeout=30) as response:
        stream = _changes(response)  # held: a dropped generator would close the connection
        assert next(stream).event == "ready"
        refused = server.client.get("/api/changes", headers=SSE)
        assert refused.status_code == 429 and "CHANGES_MAX_CLIENTS" in refused.text
    deadline = time.monotonic() + 10  # once the server has seen the first one go
    while True:
        with server.client.stream("GET", "/api/changes", headers=SSE, timeout=30) as response:
            if response.status_code == 200:
                assert next(_changes(response)).event == "ready"
                break
        assert time.monotonic() < deadline, "a reader that left frees its place"
        time.sleep(0.1)


@pytest.mark.skipif(not TEST_PG, reason="needs the tests' PostgreSQL: scripts/test starts one")
def test_a_change_made_on_another_instance_arrives(make_server: ServerFactory, tmp_path: Path) -> None:
    database = fresh_postgres_database()
    one, other = (make_server(data_dir=tmp_path / f"i{n}", DATABASE_URL=database) for n in range(2))
    with other.client.stream("GET", "/api/changes", headers=SSE, timeout=30) as response:
        stream = _changes(response)
        assert next(stream).event == "ready"
        task = one.client.post("/api/tasks", json={"title": "made elsewhere"}).json()
        got = _until(stream, {("task", task["id"])})
    assert got[-1].data == {"kind": "task", "id": task["id"], "status": "pending", "task_id": None}


def test_an_agent_that_runs_and_ends_arrives(server: Server, fake_model: fm.FakeAnthropic) -> None:
    with server.client.stream("GET", "/api/changes", headers=SSE, timeout=60) as response:
        stream = _changes(response)
        assert next(stream).event == "ready"
        agent = server.spawn(f"hi {fake_model.scenario([fm.text('done', delay=1.0)])}")
        statuses: list[str] = []
        for event in stream:
            if event.event == "change" and event.data["kind"] == "agent" and event.data["id"] == agent["id"]:
                statuses.append(event.data["status"])
                if statuses[-1] == "completed":
                    break
    assert statuses[-1] == "completed" and len(set(statuses)) == len(statuses), statuses
