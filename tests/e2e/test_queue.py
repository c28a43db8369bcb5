"""The queue through the real server, with real `claude` agents against the fake model."""

from __future__ import annotations

import time
from typing import Any

from tests.support import fake_anthropic as fm
from tests.support.forge import forge_result
from tests.support.server import RETRYING_CLI, Server, write_db


def _task(server: Server, title: str, **body: Any) -> str:
    response = server.client.post("/api/tasks", json={"title": title, **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _set(server: Server, key: str, value: Any) -> dict[str, Any]:
    response = server.client.post("/api/queue/settings", json={"key": key, "value": value})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait_task(
    server: Server, task_id: str, statuses: tuple[str, ...], timeout: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = server.client.get(f"/api/tasks/{task_id}").json()
        if task["status"] in statuses:
            return dict(task)
        assert time.monotonic() < deadline, f"task {task_id} still {task['status']}\n{server.log()}"
        time.sleep(0.05)


def _swept(server: Server) -> None:
    """Returns once the queue processor has finished a sweep that began after this call, paused or not.

    Only a sweep writes an item's blocked_reason: when the one of a task queued behind a failed dependency
    shows, a sweep that saw every item queued before it has committed. The blocked task stays queued."""
    failed = _task(server, "a dependency that failed")
    assert server.client.patch(f"/api/tasks/{failed}", json={"status": "failed"}).status_code == 200
    witness = _task(server, "blocked behind it", depends_on=[failed])
    assert server.client.post(f"/api/queue/add/{witness}").status_code == 201
    deadline = time.monotonic() + 30
    while True:
        items = {i["task_id"]: i for i in server.client.get("/api/queue").json()["items"]}
        if (items[witness]["blocked_reason"] or "").startswith(f"dependency {failed}"):
            return
        assert time.monotonic() < deadline, items
        time.sleep(0.05)


def test_settings_defaults_and_validation(server: Server) -> None:
    assert server.client.get("/api/queue/settings").json() == {
        "paused": False,
        "stop_on_failure": True,
        "max_concurrent": 1,
        "max_concurrent_per_repo": None,
    }
    for key, value, word in [
        ("max_concurrent", 0, "max_concurrent"),
        ("paused", "maybe", "paused"),
        ("colour", "blue", "colour"),
        ("max_concurrent", True, "max_concurrent"),
    ]:
        response = server.client.post("/api/queue/settings", json={"key": key, "value": value})
        assert response.status_code == 422, response.text
        assert word in response.json()["detail"]
    assert _set(server, "max_concurrent", "4")["max_concurrent"] == 4
    assert server.client.get("/api/queue").json()["settings"]["max_concurrent"] == 4


def test_add_twice_unknown_task_and_remove(server: Server) -> None:
    _set(server, "paused", True)
    task_id = _task(server, "waits")
    assert server.client.post(f"/api/queue/add/{task_id}").status_code == 201
    twice = server.client.post(f"/api/queue/add/{task_id}")
    assert twice.status_code == 409
    assert "already" in twice.json()["detail"]
    assert server.client.post("/api/queue/add/nope").status_code == 404
    assert server.client.get(f"/api/tasks/{task_id}").json()["status"] == "queued"

    removed = server.client.delete(f"/api/queue/{task_id}")
    assert removed.status_code == 200
    assert removed.json()["items"] == []
    assert server.client.get(f"/api/tasks/{task_id}").json()["status"] == "pending"
    assert server.client.delete(f"/api/queue/{task_id}").status_code == 404


def test_max_concurrent_three_never_runs_a_fourth(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario([fm.text("done", delay=0.6)])
    _set(server, "paused", True)
    _set(server, "max_concurrent", 3)
    ids = [_task(server, f"task {i}", description=f"work {marker}") for i in range(10)]
    for task_id in ids:
        assert server.client.post(f"/api/queue/add/{task_id}").status_code == 201
    _set(server, "paused", False)

    most = 0
    deadline = time.monotonic() + 120
    while True:
        status = server.client.get("/api/queue").json()
        running = len(server.client.get("/api/agents/active").json()["ids"])
        most = max(most, status["processing"], running)
        assert status["processing"] <= 3 and running <= 3, status
        if len(status["completed"]) == 10:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.02)
    assert most == 3
    for task_id in ids:
        task = server.client.get(f"/api/tasks/{task_id}").json()
        assert task["status"] == "completed"
        assert len(task["agents"]) == 1
    _assert_never_over(server, 3)


def _assert_never_over(server: Server, limit: int) -> None:
    """From the database afterwards: at no moment did more than `limit` agents run at once."""
    rows = server.query("SELECT started_at, completed_at FROM queue WHERE started_at IS NOT NULL")
    edges = sorted([(s, 1) for s, _ in rows] + [(e, -1) for _, e in rows if e], key=lambda x: (x[0], x[1]))
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    assert peak <= limit


def test_pause_and_resume(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario([fm.text("ok")])
    _set(server, "paused", True)
    task_id = _task(server, "later", description=marker)
    server.client.post(f"/api/queue/add/{task_id}")
    _swept(server)
    assert server.client.get(f"/api/tasks/{task_id}").json()["status"] == "queued"
    assert server.client.get("/api/agents").json()["total"] == 0
    _set(server, "paused", False)
    assert _wait_task(server, task_id, ("completed", "failed"))["status"] == "completed"


def test_stop_on_failure_pauses_and_says_why(server: Server, fake_model: fm.FakeAnthropic) -> None:
    bad = fake_model.scenario([fm.error(500, "model down")])
    good = fake_model.scenario([fm.text("ok")])
    _set(server, "paused", True)
    first = _task(server, "fails", description=bad)
    second = _task(server, "would run", description=good)
    server.client.post(f"/api/queue/add/{first}")
    server.client.post(f"/api/queue/add/{second}")
    _set(server, "paused", False)

    failed = _wait_task(server, first, ("failed",))
    assert "model down" in failed["error"]
    status = server.client.get("/api/queue").json()
    assert status["settings"]["paused"] is True
    assert first in status["pause_reason"] and "model down" in status["pause_reason"]
    _swept(server)
    assert server.client.get(f"/api/tasks/{second}").json()["status"] == "queued"
    assert len(server.client.get(f"/api/tasks/{second}").json()["agents"]) == 0

    _set(server, "paused", False)
    assert _wait_task(server, second, ("completed",))["status"] == "completed"
    assert server.client.get("/api/queue").json()["pause_reason"] is None
    cleared = server.client.post("/api/queue/clear").json()
    assert cleared == {"removed": 2}


def test_without_stop_on_failure_the_queue_goes_on(server: Server, fake_model: fm.FakeAnthropic) -> None:
    bad = fake_model.scenario([fm.error(500)])
    good = fake_model.scenario([fm.text("ok")])
    _set(server, "stop_on_failure", False)
    first, second = _task(server, "fails", description=bad), _task(server, "runs", description=good)
    server.client.post(f"/api/queue/add/{first}")
    server.client.post(f"/api/queue/add/{second}")
    assert _wait_task(server, second, ("completed", "failed"))["status"] == "completed"
    assert server.client.get(f"/api/tasks/{first}").json()["status"] == "failed"
    assert server.client.get("/api/queue/settings").json()["paused"] is False


def test_task_detail_shows_agents_and_queue_history(server: Server, fake_model: fm.FakeAnthropic) -> None:
    task_id = _task(server, "history", description=fake_model.scenario([fm.text("ok")]))
    server.client.post(f"/api/queue/add/{task_id}")
    task = _wait_task(server, task_id, ("completed",))
    assert [a["status"] for a in task["agents"]] == ["completed"]
    assert task["assigned_agent_id"] == task["agents"][0]["id"]
    assert [q["status"] for q in task["queue"]] == ["completed"]
    deleted = server.client.delete(f"/api/tasks/{task_id}")
    assert deleted.status_code == 204
    assert server.client.get(f"/api/tasks/{task_id}").status_code == 404
    assert server.client.get("/api/queue").json()["completed"] == []


def test_deleting_a_task_with_a_running_agent_is_refused(
    server: Server, fake_model: fm.FakeAnthropic
) -> None:
    task_id = _task(server, "busy", description=fake_model.scenario([fm.text("ok", delay=3)]))
    server.client.post(f"/api/queue/add/{task_id}")
    _wait_task(server, task_id, ("in_progress",))
    refused = server.client.delete(f"/api/tasks/{task_id}")
    assert refused.status_code == 409
    assert server.client.get(f"/api/tasks/{task_id}").status_code == 200


def test_service_killed_while_tasks_run_ends_every_task_exactly_once(
    make_server, fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    first = make_server(kill_agents_on_shutdown=False, **RETRYING_CLI)
    marker = fake_model.scenario(
        [
            fm.tool("Bash", {"command": "echo working", "description": "w"}, delay=0.5),
            fm.text("ok", delay=0.5),
        ]
    )
    _set(first, "paused", True)
    _set(first, "max_concurrent", 2)
    ids = [_task(first, f"t{i}", description=marker) for i in range(6)]
    for task_id in ids:
        first.client.post(f"/api/queue/add/{task_id}")
    _set(first, "paused", False)
    deadline = time.monotonic() + 60
    while first.client.get("/api/queue").json()["processing"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.crash()

    second = make_server(data_dir=first.data_dir, **RETRYING_CLI)
    for task_id in ids:
        assert _wait_task(second, task_id, ("completed", "failed"), timeout=120)["status"] == "completed"
    for task_id in ids:
        task = second.client.get(f"/api/tasks/{task_id}").json()
        # a spawn cut by the crash before its process started leaves an agent that never ran: it is
        # recorded as such and its item queued again, so the task still runs exactly once
        ran = [a for a in task["agents"] if a["end_reason"] != "never_started"]
        assert [a["status"] for a in ran] == ["completed"], task["agents"]
        assert [q["status"] for q in task["queue"]] == ["completed"]
    _assert_never_over(second, 2)


def test_a_spawn_cut_before_its_process_started_is_never_started_and_its_task_runs(
    make_server, fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    first = make_server()
    _set(first, "paused", True)
    task_id = _task(first, "cut", description=fake_model.scenario([fm.text("ok")]))
    assert first.client.post(f"/api/queue/add/{task_id}").status_code == 201
    first.stop()
    # what a crash between the claim of the item and the start of its agent's process leaves
    cut, at = "coding-0badc0de", "2026-01-01T00:00:00.000Z"
    write_db(
        first,
        f"UPDATE queue SET status = 'processing', agent_id = '{cut}', instance_id = 'gone',"
        f" started_at = '{at}' WHERE task_id = '{task_id}'",
        f"UPDATE tasks SET status = 'assigned', assigned_agent_id = '{cut}' WHERE id = '{task_id}'",
        "INSERT INTO agents (id, task_id, status, agent_type, prompt, timeout_seconds, max_turns, runtime,"
        f" instance_id, created_at, updated_at) VALUES ('{cut}', '{task_id}', 'starting', 'coding', 'p',"
        f" 60, 5, 'host', 'gone', '{at}', '{at}')",
    )

    second = make_server(data_dir=first.data_dir)
    never = second.wait_agent(cut, timeout=30)
    assert (never["status"], never["end_reason"]) == ("failed", "never_started"), never
    _set(second, "paused", False)
    task = _wait_task(second, task_id, ("completed", "failed"))
    assert task["status"] == "completed", task
    assert [a["end_reason"] for a in task["agents"]].count("completed") == 1, task["agents"]
    assert [q["status"] for q in task["queue"]] == ["completed"]


def test_an_agent_saying_it_never_started_fails_its_task_and_is_not_run_again(
    server: Server, fake_model: fm.FakeAnthropic
) -> None:
    lie = forge_result("never started: its service stopped before the agent's process was started")
    task_id = _task(server, "liar", description=fake_model.scenario([fm.tool("Bash", {"command": lie})]))
    assert server.client.post(f"/api/queue/add/{task_id}").status_code == 201
    task = _wait_task(server, task_id, ("completed", "failed"), timeout=60)
    assert task["status"] == "failed", task
    [agent] = task["agents"]
    assert agent["error"].startswith("never started"), agent
    assert agent["end_reason"] == "error"
    assert [q["status"] for q in task["queue"]] == ["failed"]
