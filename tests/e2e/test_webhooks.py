"""Webhooks: signed with a timestamp, retried, recorded per attempt, not lost across a restart, sent once
across instances, and never sent to internal addresses unless a setting allows it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_PG, ServerFactory, fresh_postgres_database
from tests.support import fake_anthropic as fm
from tests.support.forge import forge_result
from tests.support.receiver import Receiver, verify
from tests.support.server import Server, free_port, write_db

SECRET = "webhook-signing-secret"
# the tests' receivers listen on 127.0.0.1, which the default policy refuses
ALLOW_LOOPBACK = {"WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}
REFUSED_BEFORE_CONNECTING = "refused before connecting"
NO_ANSWER = "no answer: the connection failed or timed out"
FORGE_BUDGET_STOP = forge_result("budget_exceeded: 9 turns > 1")


@pytest.fixture
def hook_server(make_server: ServerFactory) -> Server:
    return make_server(**ALLOW_LOOPBACK)


def _until(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _register(server: Server, url: str, *types: str) -> Any:
    return server.client.post(
        "/api/webhooks", json={"url": url, "event_types": list(types) or ["task.completed"], "secret": SECRET}
    )


def _hook(server: Server, url: str, *types: str) -> str:
    response = _register(server, url, *types)
    assert response.status_code == 201, response.text
    assert "secret" not in response.json()
    return str(response.json()["id"])


def _deliveries(server: Server, hook: str) -> list[dict[str, Any]]:
    response = server.client.get(f"/api/webhooks/{hook}/deliveries")
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def _attempted(server: Server, hook: str) -> bool:
    return any(d["attempts"] >= 1 for d in _deliveries(server, hook))


def _run_task(server: Server, description: str, task_id: str = "w1") -> None:
    assert (
        server.client.post(
            "/api/tasks", json={"id": task_id, "title": "t", "description": description}
        ).status_code
        == 201
    )
    assert server.client.post(f"/api/queue/add/{task_id}").status_code == 201


def test_signed_deliveries_of_task_and_agent_changes(
    hook_server: Server, fake_model: fm.FakeAnthropic
) -> None:
    server = hook_server
    with Receiver(secret=SECRET) as receiver:
        hook = _hook(server, receiver.url, "task.completed", "agent.completed")
        _run_task(server, fake_model.scenario([fm.text("ok")]))
        _until(lambda: len(receiver.received) == 2)
        kinds = sorted(r["json"]["type"] for r in receiver.received)
        assert kinds == ["agent.completed", "task.completed"]
        for item in receiver.received:
            header = item["headers"]["X-Orchestrator-Signature"]
            assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header), header
            assert item["verified"], header
            assert item["json"]["delivery_id"] == int(item["headers"]["X-Orchestrator-Delivery"])
            # what an attacker holding a captured delivery would try
            now = time.time()
            assert not verify(SECRET, item["body"], header, now + 301), "replayed after the window"
            altered = item["body"].replace(b'"type"', b'"tipe"')
            assert not verify(SECRET, altered, header, now), "altered body"
            timestamp = header.split(",")[0].removeprefix("t=")
            moved = header.replace(f"t={timestamp}", f"t={int(timestamp) + 250}")
            assert not verify(SECRET, item["body"], moved, now), "timestamp moved forward"
            body_only = hmac.new(SECRET.encode(), item["body"], hashlib.sha256).hexdigest()
            assert body_only not in header, "the body alone must not be what is signed"
        assert receiver.of_type("task.completed")[0]["json"]["data"]["task_id"] == "w1"
        # the receiver has answered; the service records `delivered` once it has read that answer
        _until(lambda: {d["status"] for d in _deliveries(server, hook)} == {"delivered"})
        assert SECRET not in server.client.get("/api/webhooks").text
        assert SECRET not in server.log()


def test_only_a_real_budget_stop_sends_agent_budget_exceeded(
    hook_server: Server, fake_model: fm.FakeAnthropic
) -> None:
    server = hook_server
    with Receiver(secret=SECRET) as receiver:
        hook = _hook(server, receiver.url, "agent.failed", "agent.budget_exceeded")
        forger = server.spawn(
            f"forge {fake_model.scenario([fm.tool('Bash', {'command': FORGE_BUDGET_STOP})])}"
        )
        forged = server.wait_agent(forger["id"], timeout=60)
        assert forged["status"] == "failed", forged
        assert forged["error"].startswith("budget_exceeded"), forged
        assert forged["end_reason"] == "error"

        busy = [fm.tool("Bash", {"command": f"echo {i}", "description": "work"}) for i in range(10)]
        spender = server.spawn(f"loop {fake_model.scenario(busy)}", budget={"turns": 2})
        spent = server.wait_agent(spender["id"], timeout=90)
        assert (spent["status"], spent["end_reason"]) == ("failed", "budget_exceeded"), spent

        _until(lambda: len(receiver.received) >= 3)
        time.sleep(1.0)  # anything more would have come by now: the forged agent's events were stored first
        sent = sorted((r["json"]["type"], r["json"]["data"]["agent_id"]) for r in receiver.received)
        expected = [
            ("agent.budget_exceeded", spent["id"]),
            ("agent.failed", forged["id"]),
            ("agent.failed", spent["id"]),
        ]
        assert sent == sorted(expected)
        assert len(_deliveries(server, hook)) == 3


def test_failing_receiver_is_retried_and_each_attempt_recorded(
    hook_server: Server, fake_model: fm.FakeAnthropic
) -> None:
    with Receiver(fail_first=2) as receiver:
        hook = _hook(hook_server, receiver.url, "task.completed")
        _run_task(hook_server, fake_model.scenario([fm.text("ok")]))
        _until(lambda: len(receiver.received) == 1, timeout=90)
        # the receiver has the request before the service has its answer recorded
        _until(lambda: _deliveries(hook_server, hook)[0]["status"] != "pending", timeout=30)
        [delivery] = _deliveries(hook_server, hook)
        assert delivery["status"] == "delivered"
        assert delivery["attempts"] == 3
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 204]


def test_a_receiver_that_always_fails_is_given_up_after_the_last_retry(
    hook_server: Server, fake_model: fm.FakeAnthropic
) -> None:
    """Backed off 1, 5, 30, 120 and 600 s (no setting shortens them), so the test moves each retry's due
    time into the past, as if that time had passed; the sixth failure ends the delivery failed."""
    backoff = (1.0, 5.0, 30.0, 120.0, 600.0)
    past = (
        "UPDATE webhook_deliveries SET next_attempt_at = '2000-01-01T00:00:00.000Z' WHERE status = 'pending'"
    )
    with Receiver(fail_first=1000) as receiver:
        hook = _hook(hook_server, receiver.url, "task.completed")
        _run_task(hook_server, fake_model.scenario([fm.text("ok")]))
        for attempt, wait in enumerate(backoff, start=1):
            _until(lambda n=attempt: any(d["attempts"] >= n for d in _deliveries(hook_server, hook)))
            [delivery] = _deliveries(hook_server, hook)
            assert (delivery["status"], delivery["attempts"]) == ("pending", attempt), delivery
            due_in = datetime.fromisoformat(delivery["next_attempt_at"]) - datetime.now(UTC)
            assert wait - 3 < due_in.total_seconds() <= wait, (attempt, due_in)
            write_db(hook_server, past)
        _until(lambda: _deliveries(hook_server, hook)[0]["status"] != "pending")
        [delivery] = _deliveries(hook_server, hook)
        assert (delivery["status"], delivery["attempts"]) == ("failed", 6), delivery
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500] * 6
        write_db(hook_server, "UPDATE webhook_deliveries SET next_attempt_at = '2000-01-01T00:00:00.000Z'")
        time.sleep(1.5)
        [after] = _deliveries(hook_server, hook)
        assert (after["status"], after["attempts"]) == ("failed", 6), "a given-up delivery was sent again"
        assert receiver.received == []


def test_hanging_receiver_does_not_hold_up_others(hook_server: Server, fake_model: fm.FakeAnthropic) -> None:
    with Receiver(hang_first=5, hang_seconds=20) as slow, Receiver() as fast:
        _hook(hook_server, slow.url, "task.completed")
        _hook(hook_server, fast.url, "task.completed")
        started = time.monotonic()
        _run_task(hook_server, fake_model.scenario([fm.text("ok")]))
        _until(lambda: len(fast.received) == 1)
        assert time.monotonic() - started < 15
        assert hook_server.client.get("/api/health").status_code == 200


def test_delivery_errors_do_not_tell_a_closed_port_from_a_silent_one(
    hook_server: Server, fake_model: fm.FakeAnthropic
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections in the kernel, never answers
        closed = _hook(hook_server, f"http://127.0.0.1:{free_port()}/x", "task.completed")
        quiet = _hook(hook_server, f"http://127.0.0.1:{silent.getsockname()[1]}/x", "task.completed")
        _run_task(hook_server, fake_model.scenario([fm.text("ok")]))
        _until(lambda: all(_attempted(hook_server, h) for h in (closed, quiet)), 60)
    [first], [second] = _deliveries(hook_server, closed), _deliveries(hook_server, quiet)
    assert first["last_status_code"] is None and second["last_status_code"] is None
    assert first["last_error"] == second["last_error"], "the error text is a port-scan oracle"
    assert first["attempt_log"][0]["error"] == second["attempt_log"][0]["error"]


def _drip(listener: socket.socket) -> None:
    """Answers every connection one byte every 2 s: no single read ever times out."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            try:
                conn.recv(65536)
                for byte in b"HTTP/1.1 204 No Content\r\n\r\n":
                    conn.sendall(bytes([byte]))
                    time.sleep(2)
            except OSError:
                pass


def test_an_attempt_ends_within_its_deadline_however_the_receiver_drips(
    hook_server: Server, fake_model: fm.FakeAnthropic
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        threading.Thread(target=_drip, args=(listener,), daemon=True).start()
        hook = _hook(hook_server, f"http://127.0.0.1:{listener.getsockname()[1]}/x", "task.completed")
        _run_task(hook_server, fake_model.scenario([fm.text("ok")]))
        _until(lambda: _deliveries(hook_server, hook) != [])
        created = time.monotonic()
        _until(lambda: _attempted(hook_server, hook), timeout=30)
        assert time.monotonic() - created < 16  # the 10 s deadline, not the 50 s the drip would take
        [delivery] = _deliveries(hook_server, hook)
        assert delivery["last_error"] == NO_ANSWER and delivery["last_status_code"] is None


INTERNAL_TARGETS = [
    "http://127.0.0.1:3020/api/queue/clear",
    "http://localhost:3020/",
    "http://localhost./",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0.0.0.0:80/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "https://[fe80::1]/",
    "https://[fd00::1]/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[2002:a9fe:a9fe::]/",
]


def test_internal_targets_are_refused_before_any_packet(server: Server) -> None:
    for url in INTERNAL_TARGETS:
        response = _register(server, url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["detail"].startswith("url: "), response.text
        assert "WEBHOOK_ALLOW" in response.json()["detail"]
    # a public address over plain http: refused too (checked on the literal, nothing is sent)
    response = _register(server, "http://93.184.216.34/hook")
    assert response.status_code == 422
    assert "https" in response.json()["detail"]
    assert server.client.get("/api/webhooks").json() == []
    assert server.query("SELECT count(*) FROM webhooks") == [(0,)]


def test_settings_open_exactly_what_they_name(make_server: ServerFactory) -> None:
    private = make_server(WEBHOOK_ALLOW_PRIVATE="true")
    for url in ("http://127.0.0.1:9/x", "http://localhost:9/x", "http://[::1]:9/x"):
        assert _register(private, url).status_code == 201, url
    for url in ("http://169.254.169.254/", "http://0.0.0.0/", "http://224.0.0.1/"):
        assert _register(private, url).status_code == 422, url

    # public literal addresses: checked as written, no lookup and no packet; deleted at once, no event
    plain = make_server(WEBHOOK_ALLOW_HTTP="true")
    for url in ("https://93.184.216.34/hook", "http://93.184.216.34/hook"):
        response = _register(plain, url, "queue.paused")
        assert response.status_code == 201, response.text
        assert plain.client.delete(f"/api/webhooks/{response.json()['id']}").status_code == 204
    assert _register(plain, "http://10.0.0.1/", "queue.paused").status_code == 422

    port = free_port()
    named = make_server(WEBHOOK_ALLOW_HOSTS=f"localhost:{port}")
    assert _register(named, f"http://localhost:{port}/hook").status_code == 201
    for url in (f"http://localhost:{port + 1}/hook", f"http://127.0.0.1:{port}/hook", "http://10.0.0.1/"):
        assert _register(named, url).status_code == 422, url


def test_hosts_only_refuses_every_other_host_without_looking_it_up(make_server: ServerFactory) -> None:
    server = make_server(WEBHOOK_HOSTS_ONLY="true", WEBHOOK_ALLOW_HOSTS="127.0.0.1:9")
    assert _register(server, "http://127.0.0.1:9/x").status_code == 201
    for url in ("http://127.0.0.1:10/x", "http://localhost:9/x", "https://hooks.example.com/x"):
        response = _register(server, url)
        assert response.status_code == 422, url
        # refused for not being named, not for what a lookup gave
        assert "is not named in WEBHOOK_ALLOW_HOSTS" in response.json()["detail"], response.text


def test_target_is_checked_again_at_every_delivery(
    make_server: ServerFactory, fake_model: fm.FakeAnthropic
) -> None:
    with Receiver(secret=SECRET) as receiver:
        url = f"http://localhost:{receiver.port}/hook"
        first = make_server(WEBHOOK_ALLOW_HOSTS=f"localhost:{receiver.port}")
        hook = _hook(first, url, "task.completed")
        _run_task(first, fake_model.scenario([fm.text("ok")]), "w1")
        _until(lambda: len(receiver.received) == 1)
        # sent to the address checked, naming the host the webhook names
        assert receiver.received[0]["headers"]["Host"] == f"localhost:{receiver.port}"
        first.stop()

        second = make_server(data_dir=first.data_dir)  # default policy: loopback closed
        _run_task(second, fake_model.scenario([fm.text("ok")]), "w2")
        _until(
            lambda: any(d["attempts"] >= 1 for d in _deliveries(second, hook) if d["status"] != "delivered")
        )
        time.sleep(0.5)
        assert receiver._seen == 1, "the refused delivery reached the receiver"
        refused = next(d for d in _deliveries(second, hook) if d["status"] != "delivered")
        assert refused["last_status_code"] is None
        assert refused["last_error"].startswith(REFUSED_BEFORE_CONNECTING), refused["last_error"]


def test_redirects_and_proxy_variables_are_not_followed(make_server: ServerFactory, tmp_path: Path) -> None:
    script = tmp_path / "claude"
    script.write_text(QUICK_AGENT)
    script.chmod(0o755)
    with Receiver() as elsewhere, Receiver(redirect_to=elsewhere.url) as redirecting, Receiver() as proxy:
        proxy_url = f"http://127.0.0.1:{proxy.port}"
        server = make_server(
            CLAUDE_BIN=str(script),
            HTTP_PROXY=proxy_url,
            HTTPS_PROXY=proxy_url,
            ALL_PROXY=proxy_url,
            **ALLOW_LOOPBACK,
        )
        hook = _hook(server, redirecting.url, "agent.completed")
        server.spawn("quick")
        _until(lambda: _attempted(server, hook))
        delivery = _deliveries(server, hook)[0]
        assert delivery["last_status_code"] == 307 and delivery["status"] == "pending"
        assert redirecting._seen >= 1
        assert elsewhere._seen == 0, "the redirect was followed"
        assert proxy._seen == 0, "the delivery went through a proxy from the environment"


def test_bad_webhooks_are_refused(server: Server) -> None:
    for body, field in [
        ({"url": "ftp://x", "event_types": ["task.completed"], "secret": SECRET}, "url"),
        # refused on its form, before its host is looked up
        ({"url": "https://user:pw@x.test/x", "event_types": ["task.completed"], "secret": SECRET}, "url"),
        ({"url": "https://x.test/x", "event_types": ["task.exploded"], "secret": SECRET}, "event_types"),
        ({"url": "https://x.test/x", "event_types": ["task.completed"], "secret": "short"}, "secret"),
    ]:
        response = server.client.post("/api/webhooks", json=body)
        assert response.status_code == 422
        assert field in response.json()["detail"]
    assert server.client.get("/api/webhooks").json() == []
    assert server.client.delete("/api/webhooks/wh-nope").status_code == 404


def test_the_number_of_webhooks_is_capped(hook_server: Server) -> None:
    for n in range(50):
        assert _register(hook_server, f"http://127.0.0.1:9/{n}").status_code == 201
    response = _register(hook_server, "http://127.0.0.1:9/one-more")
    assert response.status_code == 409
    assert "50" in response.json()["detail"]


def test_delivery_survives_a_restart_in_the_middle(
    make_server: ServerFactory, fake_model: fm.FakeAnthropic
) -> None:
    env = {**ALLOW_LOOPBACK, "INSTANCE_HEARTBEAT_SECONDS": "0.5", "INSTANCE_LAPSE_SECONDS": "3"}
    first = make_server(**env)
    with Receiver(hang_first=1, hang_seconds=60) as receiver:
        _hook(first, receiver.url, "task.completed")
        _run_task(first, fake_model.scenario([fm.text("ok")]))
        _until(lambda: receiver._seen >= 1)
        first.crash()  # mid-delivery: its lease (30 s) is still running
        crashed = time.monotonic()
        second = make_server(data_dir=first.data_dir, **env)
        _until(lambda: len(receiver.received) >= 1, timeout=90)
        # taken over once the dead sender's heartbeat lapsed, before its lease ran out
        assert time.monotonic() - crashed < 25
        ids = {r["headers"]["X-Orchestrator-Delivery"] for r in receiver.received}
        assert len(ids) == 1
        assert receiver.of_type("task.completed")[0]["json"]["data"]["task_id"] == "w1"
        assert second.client.get("/api/health").status_code == 200


QUICK_AGENT = """#!/bin/sh
echo '{"type":"system","subtype":"init","session_id":"quick"}'
echo '{"type":"result","subtype":"success","is_error":false,"result":"ok","total_cost_usd":0.001}'
"""


@pytest.mark.skipif(not TEST_PG, reason="needs the tests' PostgreSQL: scripts/test starts one")
def test_two_instances_send_each_delivery_once(make_server: ServerFactory, tmp_path: Path) -> None:
    script = tmp_path / "claude"
    script.write_text(QUICK_AGENT)
    script.chmod(0o755)
    env = {"DATABASE_URL": fresh_postgres_database(), "CLAUDE_BIN": str(script), **ALLOW_LOOPBACK}
    servers = [make_server(data_dir=tmp_path / f"i{n}", **env) for n in range(2)]
    agents = 24
    with Receiver(secret=SECRET, delay=0.3) as receiver:
        hooks = [_hook(servers[0], f"{receiver.url}/{n}", "agent.completed") for n in range(2)]
        for n in range(agents):
            servers[n % 2].spawn(f"quick {n}")
        _until(lambda: len(receiver.received) >= 2 * agents, timeout=90)
        time.sleep(3)  # room for a second copy to arrive
        counts = Counter(r["headers"]["X-Orchestrator-Delivery"] for r in receiver.received)
        assert len(counts) == 2 * agents
        assert set(counts.values()) == {1}, counts
        # each event fanned out once: one delivery per webhook and agent
        pairs = Counter((r["path"], r["json"]["data"]["agent_id"]) for r in receiver.received)
        assert len(pairs) == 2 * agents and set(pairs.values()) == {1}, pairs
        assert all(r["verified"] for r in receiver.received)
    for hook in hooks:
        rows = servers[1].query(
            f"SELECT status, attempts, attempt_log FROM webhook_deliveries WHERE webhook_id = '{hook}'"
        )
        assert len(rows) == agents
        for status, attempts, attempt_log in rows:
            # one instance counts each attempt, once
            assert status == "delivered" and attempts == len(json.loads(attempt_log)), (attempts, attempt_log)
    assert servers[1].query("SELECT count(*) FROM webhook_events") == [(0,)]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("WEBHOOK_ALLOW_HOSTS", "hooks.internal:99999"), ("WEBHOOK_ALLOW_PRIVATE", "perhaps")],
)
def test_wrong_webhook_setting_stops_the_service_naming_it(tmp_path: Path, variable: str, value: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "ORCHESTRATOR_DATA_DIR": str(tmp_path), variable: value}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"error: {variable}:"), proc.stderr


def test_a_pause_by_a_person_sends_queue_paused_once(hook_server: Server) -> None:
    def pause(paused: bool) -> None:
        answer = hook_server.client.post("/api/queue/settings", json={"key": "paused", "value": paused})
        assert answer.status_code == 200, answer.text

    with Receiver(secret=SECRET) as receiver:
        hook = _hook(hook_server, receiver.url, "queue.paused")
        pause(True)
        pause(True)  # pausing a paused queue is not a second pause
        status = hook_server.client.get("/api/queue").json()
        assert status["pause_reason"] == "paused through the API", status
        pause(False)
        pause(True)
        _until(lambda: len(receiver.received) >= 2)
        # the outbox is expanded in order: a wrong delivery for the repeated pause would exist by now
        assert len(_deliveries(hook_server, hook)) == 2
        sent = [(r["json"]["type"], r["json"]["data"]) for r in receiver.received]
        assert sent == [("queue.paused", {"reason": "paused through the API"})] * 2, sent


def test_rate_limits_stuck_agents_and_a_failed_task_each_send_their_event(
    make_server: ServerFactory, fake_model: fm.FakeAnthropic
) -> None:
    server = make_server(
        **ALLOW_LOOPBACK,
        AGENT_STALL_SECONDS="1.5",
        AGENT_LOOP_REPEATS="3",
    )
    topics = ("agent.rate_limited", "agent.stalled", "agent.looping", "task.failed", "queue.paused")
    with Receiver(secret=SECRET) as receiver:
        hook = _hook(server, receiver.url, *topics)
        limited = server.spawn(f"limited {fake_model.scenario([fm.error(429, 'slow down')])}")
        stalled = server.spawn(f"silent {fake_model.scenario([fm.stall(60)])}")
        same = fm.tool("Bash", {"command": "echo again", "description": "again"})
        looping = server.spawn(f"loop {fake_model.scenario([same], repeat_last=True)}", max_turns=6)
        _run_task(server, fake_model.scenario([fm.error(500, "broken")]), task_id="doomed")
        deadline = time.monotonic() + 90

        def stalled_flagged() -> bool:
            return any(
                r["json"]["type"] == "agent.stalled" and r["json"]["data"].get("agent_id") == stalled["id"]
                for r in receiver.received
            )

        # another agent whose CLI starts slowly may be flagged stalled first
        while (sent := {r["json"]["type"] for r in receiver.received}) != set(
            topics
        ) or not stalled_flagged():
            assert time.monotonic() < deadline, sent
            time.sleep(0.1)
        assert server.client.post(f"/api/agents/{stalled['id']}/kill").status_code == 200
        for agent in (limited, looping):
            server.wait_agent(agent["id"], timeout=90)
        about: dict[str, set[str]] = {}
        for r in receiver.received:
            data = r["json"]["data"]
            about.setdefault(r["json"]["type"], set()).add(data.get("agent_id") or data.get("task_id") or "")
        assert about["agent.rate_limited"] == {limited["id"]}
        # the CLI's start can be slow enough to flag another agent too
        assert stalled["id"] in about["agent.stalled"]
        assert about["agent.looping"] == {looping["id"]}
        assert about["task.failed"] == {"doomed"}
        [paused] = receiver.of_type("queue.paused")
        assert paused["json"]["data"]["reason"].startswith("task doomed failed"), paused["json"]
        assert all(r["verified"] for r in receiver.received)
        assert {d["status"] for d in _deliveries(server, hook)} == {"delivered"}
