"""Three instances on one PostgreSQL; one is SIGKILLed at random moments and restarted.
Every task ends exactly once, no step runs twice, no log line is lost or doubled, and
max_concurrent holds across the instances (checked from the database afterwards)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_PG, fresh_postgres_database
from tests.support.server import Server

pytestmark = pytest.mark.skipif(not TEST_PG, reason="needs the tests' PostgreSQL: scripts/test starts one")

TASKS = 200
MAX_CONCURRENT = 4

AGENT = """#!/bin/sh
echo '{"type":"system","subtype":"init","session_id":"chaos"}'
for i in 1 2 3 4 5 6; do echo "{\\"type\\":\\"chaos\\",\\"line\\":$i}"; sleep 0.05; done
echo '{"type":"result","subtype":"success","is_error":false,"result":"ok","total_cost_usd":0.001}'
"""


def _peak(rows: list[tuple[str, str | None]]) -> int:
    edges = sorted([(s, 1) for s, _ in rows] + [(e, -1) for _, e in rows if e], key=lambda x: (x[0], x[1]))
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def test_chaos_three_instances_one_killed_repeatedly(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "claude"
    script.write_text(AGENT)
    script.chmod(0o755)
    env = {
        "DATABASE_URL": fresh_postgres_database(),
        "CLAUDE_BIN": str(script),
        "INSTANCE_HEARTBEAT_SECONDS": "0.5",
        "INSTANCE_LAPSE_SECONDS": "5",
        "LOG_LEVEL": "INFO",
    }
    servers: list[Server] = [
        make_server(data_dir=tmp_path / f"i{n}", kill_agents_on_shutdown=False, **env) for n in range(3)
    ]
    api = servers[0].client
    api.post("/api/queue/settings", json={"key": "paused", "value": True})
    api.post("/api/queue/settings", json={"key": "stop_on_failure", "value": False})
    api.post("/api/queue/settings", json={"key": "max_concurrent", "value": MAX_CONCURRENT})
    for i in range(TASKS):
        assert api.post("/api/tasks", json={"id": f"c{i:03d}", "title": f"chaos {i}"}).status_code == 201
        assert api.post(f"/api/queue/add/c{i:03d}").status_code == 201
    api.post("/api/queue/settings", json={"key": "paused", "value": False})

    rng = random.Random(7)
    kills = 0
    deadline = time.monotonic() + 240
    next_kill = time.monotonic() + rng.uniform(1.0, 3.0)
    while True:
        alive = next(s for s in servers if s.proc is not None)
        status = alive.client.get("/api/queue").json()
        if status["queued"] == 0 and status["processing"] == 0:
            break
        assert time.monotonic() < deadline, status
        if time.monotonic() >= next_kill and kills < 6:
            victim = rng.choice([s for s in servers if s.proc is not None])
            victim.crash()
            kills += 1
            time.sleep(rng.uniform(0.2, 1.0))
            victim.port = victim.port  # same address, new process, new instance id
            victim.start()
            next_kill = time.monotonic() + rng.uniform(1.5, 4.0)
        time.sleep(0.1)

    db = servers[0]
    per_task = db.query(
        "SELECT t.status, count(a.id) FROM tasks t LEFT JOIN agents a ON a.task_id = t.id "
        "AND a.end_reason IS DISTINCT FROM 'never_started' "
        "GROUP BY t.id"
    )
    assert len(per_task) == TASKS
    assert all(status == "completed" and n == 1 for status, n in per_task), [
        r for r in per_task if r != ("completed", 1)
    ]
    items = db.query("SELECT task_id, status FROM queue")
    assert sorted(t for t, _ in items) == sorted(f"c{i:03d}" for i in range(TASKS))
    assert {s for _, s in items} == {"completed"}
    never_started = db.query("SELECT count(*) FROM agents WHERE end_reason = 'never_started'")[0][0]

    lost = doubled = 0
    for agent_id, run_dir, end_reason in db.query("SELECT id, run_dir, end_reason FROM agents"):
        stored = [
            c
            for (c,) in db.query(
                "SELECT content FROM agent_logs "
                f"WHERE agent_id = '{agent_id}' AND stream = 'stdout' ORDER BY id"
            )
        ]
        output = Path(run_dir) / "stdout"
        if end_reason == "never_started":
            assert stored == []
            continue
        printed = output.read_text().splitlines()
        lost += len([line for line in printed if line not in stored])
        doubled += len(stored) - len(set(stored))
        assert stored == printed, agent_id
    assert (lost, doubled) == (0, 0)

    assert _peak(db.query("SELECT started_at, completed_at FROM queue")) <= MAX_CONCURRENT
    adopted = sum(s.log().count("adopted agent") for s in servers)
    print(
        f"chaos: tasks={TASKS} kills={kills} adoptions={adopted} never_started={never_started} "
        f"lost={lost} doubled={doubled}"
    )
    assert kills >= 3
