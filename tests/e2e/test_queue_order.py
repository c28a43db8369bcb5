"""Queue order and waiting: priorities, dependencies, the per-repository cap, parked rate-limited work."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import fake_anthropic as fm
from tests.support.repos import git
from tests.support.server import Server


def _task(server: Server, task_id: str, **body: Any) -> None:
    response = server.client.post("/api/tasks", json={"id": task_id, "title": task_id, **body})
    assert response.status_code == 201, response.text


def _set(server: Server, key: str, value: Any) -> None:
    assert server.client.post("/api/queue/settings", json={"key": key, "value": value}).status_code == 200


def _wait_done(server: Server, n: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = server.client.get("/api/queue").json()
        if len(status["completed"]) >= n:
            return dict(status)
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def _wait_parked(server: Server, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The queue's status and its items waiting for a retry time, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        status = server.client.get("/api/queue").json()
        parked = [i for i in status["items"] if i["retry_at"]]
        if parked:
            return status, parked
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def _start_order(server: Server) -> list[str]:
    rows = server.query("SELECT task_id FROM queue ORDER BY started_at")
    return [r[0] for r in rows]


def test_highest_priority_first_then_oldest(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario([fm.text("ok")])
    _set(server, "paused", True)
    for task_id, priority in [("low", 0), ("high", 5), ("mid", 2), ("high2", 5)]:
        _task(server, task_id, description=marker, priority=priority)
        server.client.post(f"/api/queue/add/{task_id}")
    _set(server, "paused", False)
    _wait_done(server, 4)
    assert _start_order(server) == ["high", "high2", "mid", "low"]


def test_dependencies_wait_and_a_failed_one_blocks(server: Server, fake_model: fm.FakeAnthropic) -> None:
    ok, bad = fake_model.scenario([fm.text("ok")]), fake_model.scenario([fm.error(500, "broken")])
    _set(server, "stop_on_failure", False)
    _set(server, "paused", True)
    _task(server, "base", description=ok)
    _task(server, "child", description=ok, depends_on=["base"], priority=9)
    _task(server, "doomed", description=bad)
    _task(server, "orphan", description=ok, depends_on=["doomed"], priority=9)
    for task_id in ("child", "orphan", "base", "doomed"):
        server.client.post(f"/api/queue/add/{task_id}")
    _set(server, "paused", False)
    _wait_done(server, 3)
    order = _start_order(server)
    assert order.index("base") < order.index("child")
    status = server.client.get("/api/queue").json()
    [waiting] = status["items"]
    assert waiting["task_id"] == "orphan"
    assert waiting["status"] == "queued"
    assert "doomed" in waiting["blocked_reason"]


def test_cycles_and_unknown_dependencies_are_refused(server: Server) -> None:
    _task(server, "a")
    _task(server, "b", depends_on=["a"])
    cycle = server.client.patch("/api/tasks/a", json={"depends_on": ["b"]})
    assert cycle.status_code == 422
    assert "cycle" in cycle.json()["detail"]
    assert server.client.get("/api/tasks/a").json()["depends_on"] == []
    unknown = server.client.post("/api/tasks", json={"title": "x", "depends_on": ["ghost"]})
    assert unknown.status_code == 422
    assert "ghost" in unknown.json()["detail"]
    self_loop = server.client.patch("/api/tasks/b", json={"depends_on": ["b"]})
    assert self_loop.status_code == 422


def test_per_repo_cap_keeps_agents_apart(server: Server, fake_model: fm.FakeAnthropic) -> None:
    slow = fake_model.scenario([fm.text("ok", delay=1.0)])
    _set(server, "paused", True)
    _set(server, "max_concurrent", 3)
    _set(server, "max_concurrent_per_repo", 1)
    git("init", "--quiet", str(server.data_dir / "projects" / "shared"))  # a project: no forge is asked
    for i in range(3):
        _task(server, f"same{i}", description=slow, repo="shared")
        server.client.post(f"/api/queue/add/same{i}")
    _set(server, "paused", False)
    _wait_done(server, 3)
    rows = server.query("SELECT started_at, completed_at FROM queue ORDER BY started_at")
    for (_, done), (start, _) in itertools.pairwise(rows):
        assert start >= done, rows


def test_rate_limited_work_parks_and_resumes_the_same_session(
    make_server, fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(RATE_LIMIT_BACKOFF_SECONDS="2")
    marker = fake_model.scenario([fm.error(429, "slow down", times=1), fm.text("done after the limit")])
    _task(server, "limited", description=marker)
    server.client.post("/api/queue/add/limited")
    _, parked = _wait_parked(server)
    assert "rate_limited" in parked[0]["error"]
    assert server.client.get("/api/queue/settings").json()["paused"] is False

    done = _wait_done(server, 1)
    assert done["completed"][0]["status"] == "completed"
    task = server.client.get("/api/tasks/limited").json()
    first, second = task["agents"]
    assert first["status"] == "rate_limited"
    assert second["status"] == "completed"
    assert second["resumed_session"] == first["session_id"]


def test_a_far_rate_limit_reset_is_capped_and_resume_starts_the_work_now(
    make_server, fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    marker = fake_model.scenario(
        [fm.error(429, "usage limit reached|9999999999", times=1), fm.text("done after the limit")]
    )
    _task(server, "far", description=marker)
    server.client.post("/api/queue/add/far")
    _, parked = _wait_parked(server)
    limit = datetime.now(UTC) + timedelta(hours=24, minutes=5)
    assert datetime.fromisoformat(parked[0]["retry_at"]) < limit, parked

    _set(server, "paused", False)
    status = server.client.get("/api/queue").json()
    assert all(i["retry_at"] is None for i in status["items"]), status
    done = _wait_done(server, 1, timeout=60)
    assert done["completed"][0]["status"] == "completed"


def test_a_parked_item_holds_itself_and_the_next_task_runs_meanwhile(
    make_server, fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(RATE_LIMIT_BACKOFF_SECONDS="20")
    limited = fake_model.scenario([fm.error(429, "slow down", times=1), fm.text("done after the limit")])
    _task(server, "limited", description=limited, priority=5)
    _task(server, "other", description=fake_model.scenario([fm.text("ok")]))
    server.client.post("/api/queue/add/limited")
    server.client.post("/api/queue/add/other")
    _, [parked] = _wait_parked(server)
    assert parked["task_id"] == "limited"
    retry_at = datetime.fromisoformat(parked["retry_at"])

    done = _wait_done(server, 2, timeout=120)
    items = {i["task_id"]: i for i in done["completed"]}
    assert {i["status"] for i in items.values()} == {"completed"}, done
    other_done = datetime.fromisoformat(items["other"]["completed_at"])
    assert other_done < retry_at, "the next task ran and completed while the first was parked"
    assert datetime.fromisoformat(items["limited"]["started_at"]) >= retry_at, "the parked one waited"
    first, second = server.client.get("/api/tasks/limited").json()["agents"]
    assert (first["status"], second["status"]) == ("rate_limited", "completed")
    assert second["resumed_session"] == first["session_id"]


def test_a_task_limited_again_and_again_fails_at_the_cap(make_server, fake_model: fm.FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    """A run's limit is its own report: an agent that says so every time must not hold its task for ever."""
    server = make_server(RATE_LIMIT_BACKOFF_SECONDS="0.2", RATE_LIMIT_MAX_PER_TASK="2")
    marker = fake_model.scenario([fm.error(429, "slow down")], repeat_last=True)
    _task(server, "limited", description=marker)
    server.client.post("/api/queue/add/limited")
    done = _wait_done(server, 1, timeout=90)
    ended = done["completed"][0]
    assert ended["status"] == "failed", done
    assert "rate limited 2 times" in ended["error"], done
    agents = server.client.get("/api/tasks/limited").json()["agents"]
    assert [a["status"] for a in agents] == ["rate_limited", "rate_limited"]
