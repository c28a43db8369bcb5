"""Webhooks: signed, retried, recorded per attempt, and not lost across a restart."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from tests.support import fake_anthropic as fm
from tests.support.receiver import Receiver
from tests.support.server import Server

SECRET = "webhook-signing-secret"


def _until(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _hook(server: Server, url: str, *types: str) -> str:
    response = server.client.post(
        "/api/webhooks", json={"url": url, "event_types": list(types), "secret": SECRET}
    )
    assert response.status_code == 201, response.text
    assert "secret" not in response.json()
    return str(response.json()["id"])


def _run_task(server: Server, description: str, task_id: str = "w1") -> None:
    assert (
        server.client.post(
            "/api/tasks", json={"id": task_id, "title": "t", "description": description}
        ).status_code
        == 201
    )
    assert server.client.post(f"/api/queue/add/{task_id}").status_code == 201


def test_signed_deliveries_of_task_and_agent_changes(server: Server, fake_model: fm.FakeAnthropic) -> None:
    with Receiver() as receiver:
        hook = _hook(server, receiver.url, "task.completed", "agent.completed")
        _run_task(server, fake_model.scenario([fm.text("ok")]))
        _until(lambda: len(receiver.received) == 2)
        kinds = sorted(r["json"]["type"] for r in receiver.received)
        assert kinds == ["agent.completed", "task.completed"]
        for item in receiver.received:
            expected = "sha256=" + hmac.new(SECRET.encode(), item["body"], hashlib.sha256).hexdigest()
            assert item["headers"]["X-Orchestrator-Signature"] == expected
        assert receiver.of_type("task.completed")[0]["json"]["data"]["task_id"] == "w1"
        deliveries = server.client.get(f"/api/webhooks/{hook}/deliveries").json()
        assert {d["status"] for d in deliveries} == {"delivered"}
        assert SECRET not in server.client.get("/api/webhooks").text


def test_failing_receiver_is_retried_and_each_attempt_recorded(
    server: Server, fake_model: fm.FakeAnthropic
) -> None:
    with Receiver(fail_first=2) as receiver:
        hook = _hook(server, receiver.url, "task.completed")
        _run_task(server, fake_model.scenario([fm.text("ok")]))
        _until(lambda: len(receiver.received) == 1, timeout=90)
        [delivery] = server.client.get(f"/api/webhooks/{hook}/deliveries").json()
        assert delivery["status"] == "delivered"
        assert delivery["attempts"] == 3
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 204]


def test_hanging_receiver_does_not_hold_up_others(server: Server, fake_model: fm.FakeAnthropic) -> None:
    with Receiver(hang_first=5, hang_seconds=20) as slow, Receiver() as fast:
        _hook(server, slow.url, "task.completed")
        _hook(server, fast.url, "task.completed")
        started = time.monotonic()
        _run_task(server, fake_model.scenario([fm.text("ok")]))
        _until(lambda: len(fast.received) == 1)
        assert time.monotonic() - started < 15
        assert server.client.get("/api/health").status_code == 200


def test_bad_webhooks_are_refused(server: Server) -> None:
    for body, field in [
        ({"url": "ftp://x", "event_types": ["task.completed"], "secret": SECRET}, "url"),
        ({"url": "http://127.0.0.1:1/x", "event_types": ["task.exploded"], "secret": SECRET}, "event_types"),
        ({"url": "http://127.0.0.1:1/x", "event_types": ["task.completed"], "secret": "short"}, "secret"),
    ]:
        response = server.client.post("/api/webhooks", json=body)
        assert response.status_code == 422
        assert field in response.json()["detail"]
    assert server.client.get("/api/webhooks").json() == []
    assert server.client.delete("/api/webhooks/wh-nope").status_code == 404


def test_delivery_survives_a_restart_in_the_middle(make_server, fake_model: fm.FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    first = make_server()
    with Receiver(hang_first=1, hang_seconds=30) as receiver:
        _hook(first, receiver.url, "task.completed")
        _run_task(first, fake_model.scenario([fm.text("ok")]))
        _until(lambda: receiver._seen >= 1)
        first.crash()
        second = make_server(data_dir=first.data_dir)
        _until(lambda: len(receiver.received) >= 1, timeout=60)
        ids = {r["headers"]["X-Orchestrator-Delivery"] for r in receiver.received}
        assert len(ids) == 1
        assert receiver.of_type("task.completed")[0]["json"]["data"]["task_id"] == "w1"
        assert second.client.get("/api/health").status_code == 200
