"""`GET /api/stats` on a real server: known agents give known figures; the window is capped."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx

from tests.support.server import Server, write_db


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_figures_of_known_agents(server: Server) -> None:
    if datetime.now(UTC).minute == 59:
        time.sleep(61 - datetime.now(UTC).second)  # not across the turn of an hour
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rows = [  # (id, type, status, start, end, cost): two in the hour before this one, one now, one old
        (
            "coding-k1",
            "coding",
            "completed",
            hour - timedelta(minutes=50),
            hour - timedelta(minutes=20),
            1.25,
        ),
        ("coding-k2", "coding", "failed", hour - timedelta(minutes=40), hour - timedelta(minutes=10), 0.5),
        ("reviewer-k3", "reviewer", "completed", hour, hour + timedelta(seconds=1), 0.25),
        ("coding-k4", "coding", "completed", hour - timedelta(days=3), hour - timedelta(days=3), 2.0),
    ]
    write_db(
        server,
        *(
            "INSERT INTO agents (id, agent_type, status, prompt, timeout_seconds, max_turns, runtime,"
            " created_at, updated_at, started_at, completed_at, cost_usd, duration_ms) VALUES"
            f" ('{i}', '{t}', '{s}', 'p', 60, 5, 'host', '{_iso(a)}', '{_iso(b)}', '{_iso(a)}', '{_iso(b)}',"
            f" {c}, {int((b - a).total_seconds() * 1000)})"
            for i, t, s, a, b, c in rows
        ),
    )
    found = server.client.get("/api/stats", params={"hours": 3, "days": 5}).json()
    assert [h["start"] for h in found["hours"]][-2:] == [
        _iso(hour - timedelta(hours=1))[:19] + "Z",
        _iso(hour)[:19] + "Z",
    ]
    assert [h["spend_usd"] for h in found["hours"]] == [0, 1.75, 0.25]
    assert [h["agents_running"] for h in found["hours"]] == [0, 2, 1]
    assert [d["spend_usd"] for d in found["days"]][-4] == 2.0
    assert sum(d["spend_usd"] for d in found["days"]) == 4.0
    kinds = {t["agent_type"]: t for t in found["by_type"]}
    assert kinds["coding"] | {"mean_duration_ms": 0} == {
        "agent_type": "coding",
        "ended": 2,
        "completed": 1,
        "success_rate": 0.5,
        "mean_duration_ms": 0,
        "spend_usd": 1.75,
    }
    assert kinds["coding"]["mean_duration_ms"] == 30 * 60 * 1000
    assert kinds["reviewer"]["success_rate"] == 1.0 and found["truncated"] is False


def test_the_window_is_capped_and_needs_the_token(server: Server) -> None:
    assert httpx.get(f"{server.url}/api/stats").status_code == 401
    assert server.client.get("/api/stats", params={"hours": 169}).status_code == 422
    assert server.client.get("/api/stats", params={"days": 91}).status_code == 422
    found = server.client.get("/api/stats").json()
    assert len(found["hours"]) == 24 and len(found["days"]) == 14 and found["by_type"] == []
