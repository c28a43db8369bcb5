"""The events API and the EVENT_DIR inbox."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.server import Server


def _task(server: Server, task_id: str = "t1") -> str:
    assert server.client.post("/api/tasks", json={"id": task_id, "title": "x"}).status_code == 201
    return task_id


def test_create_list_get_and_mark_processed(server: Server) -> None:
    task_id = _task(server)
    body = {"id": "evt-1", "type": "deploy.requested", "task_id": task_id, "payload": {"why": "manual"}}
    created = server.client.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["payload"] == {"why": "manual"}
    again = server.client.post("/api/events", json={**body, "payload": {"why": "other"}})
    assert again.status_code == 200
    assert again.json()["payload"] == {"why": "manual"}
    assert server.client.get("/api/events").json()["total"] == 1

    assert server.client.get("/api/events/evt-1").json()["type"] == "deploy.requested"
    assert server.client.get("/api/events/nope").status_code == 404
    marked = server.client.post("/api/events/evt-1/processed")
    assert marked.status_code == 200
    assert marked.json()["status"] == "processed"
    assert [e["id"] for e in server.client.get("/api/events/processed").json()["items"]] == ["evt-1"]
    assert server.client.get("/api/events/pending").json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "task.exploded"}, "type"),
        ({"type": "agent.finished"}, "type"),
        ({}, "type"),
        ({"type": "pr.created", "payload": [1, 2]}, "payload"),
        ({"type": "pr.created", "task_id": "../x"}, "task_id"),
        ({"type": "pr.created", "id": "-rf"}, "id"),
        ({"type": "pr.created", "task_id": "missing"}, "task_id"),
    ],
)
def test_bad_events_are_refused_naming_the_field(server: Server, body: dict[str, object], field: str) -> None:
    response = server.client.post("/api/events", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.json()["detail"]
    assert server.client.get("/api/events").json()["total"] == 0


def test_bad_event_filters_name_the_field(server: Server) -> None:
    response = server.client.get("/api/events", params={"type": "nope"})
    assert response.status_code == 422
    assert "type" in response.json()["detail"]


def _wait_events(server: Server, n: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 15
    while True:
        items = server.client.get("/api/events").json()["items"]
        if len(items) >= n:
            return list(items)
        assert time.monotonic() < deadline, items
        time.sleep(0.1)


def test_inbox_ingests_once_and_quarantines_malformed_files(server: Server) -> None:
    task_id = _task(server)
    inbox = server.data_dir / "events"
    good = {"type": "audit.requested", "task_id": task_id, "payload": {"from": "a sandboxed agent"}}
    (inbox / "good-1.json").write_text(json.dumps(good))
    (inbox / "broken.json").write_text("{not json")
    (inbox / "wrong-type.json").write_text(json.dumps({"type": "nope"}))
    (inbox / ".partial.json.tmp").write_text("{")

    items = _wait_events(server, 1)
    deadline = time.monotonic() + 10
    while (inbox / "broken.json").exists() or (inbox / "wrong-type.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert [(e["id"], e["type"]) for e in items] == [("inbox-good-1", "audit.requested")]
    assert (inbox / "ingested" / "good-1.json").exists()
    assert (inbox / "quarantine" / "broken.json").read_text() == "{not json"
    assert "Expecting" in (inbox / "quarantine" / "broken.json.error").read_text()
    assert "type" in (inbox / "quarantine" / "wrong-type.json.error").read_text()
    assert (inbox / ".partial.json.tmp").exists()

    (inbox / "good-1.json").write_text(json.dumps(good))
    deadline = time.monotonic() + 10
    while (inbox / "good-1.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert server.client.get("/api/events").json()["total"] == 1
    assert "quarantined" in server.log()


def test_event_ids_from_files_cannot_escape(server: Server, tmp_path: Path) -> None:
    inbox = server.data_dir / "events"
    (inbox / "x.json").write_text(json.dumps({"id": "../../etc/passwd", "type": "pr.created"}))
    deadline = time.monotonic() + 10
    while not (inbox / "quarantine" / "x.json.error").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "id" in (inbox / "quarantine" / "x.json.error").read_text()
