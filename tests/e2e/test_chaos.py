"""Three instances on one PostgreSQL; one at a time is SIGKILLed while it runs agents and restarted, and
one is frozen (SIGSTOP) until the others took its agents over, then woken to write as if nothing happened.
Every agent a stopped instance held is taken over by another, every task ends exactly once, no step runs
twice, no log line is lost or doubled, and max_concurrent holds across the instances (checked from the
database afterwards)."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_PG, fresh_postgres_database
from tests.support.server import Server

pytestmark = pytest.mark.skipif(not TEST_PG, reason="needs the tests' PostgreSQL: scripts/test starts one")

TASKS = 200
MAX_CONCURRENT = 4
KILLS = 6
LAPSE_SECONDS = 4
# within pytest's timeout (180 s) with the servers' start and stop, so that a stuck run fails here, with
# the queue's state, and not in pytest-timeout
DEADLINE_SECONDS = 140

AGENT = """#!/bin/sh
echo '{"type":"system","subtype":"init","session_id":"chaos"}'
for i in 1 2 3 4 5 6; do echo "{\\"type\\":\\"chaos\\",\\"line\\":$i}"; sleep 0.1; done
echo '{"type":"result","subtype":"success","is_error":false,"result":"ok","total_cost_usd":0.001}'
"""


def _peak(rows: list[tuple[str, str | None]]) -> int:
    edges = sorted([(s, 1) for s, _ in rows] + [(e, -1) for _, e in rows if e], key=lambda x: (x[0], x[1]))
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def _instance_id(server: Server) -> str:
    return str(server.client.get("/api/health").json()["instance_id"])


def _busy(server: Server) -> bool:
    return int(server.client.get("/api/health").json()["running_agents"]) > 0


def _held(db: Server, instance_id: str) -> dict[str, str]:
    """The agents the store says `instance_id` holds and has not ended, with their status."""
    rows = db.query(
        "SELECT id, status FROM agents "
        f"WHERE instance_id = '{instance_id}' AND status IN ('starting', 'running')"
    )
    return {str(agent_id): str(status) for agent_id, status in rows}


def _owners(db: Server, agent_ids: set[str]) -> dict[str, str]:
    listed = ", ".join(f"'{a}'" for a in agent_ids)
    return {str(a): str(o) for a, o in db.query(f"SELECT id, instance_id FROM agents WHERE id IN ({listed})")}


def test_chaos_three_instances_killed_and_frozen_while_they_run_agents(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "claude"
    script.write_text(AGENT)
    script.chmod(0o755)
    env = {
        "DATABASE_URL": fresh_postgres_database(),
        "CLAUDE_BIN": str(script),
        "INSTANCE_HEARTBEAT_SECONDS": "0.5",
        "INSTANCE_LAPSE_SECONDS": str(LAPSE_SECONDS),
        "LOG_LEVEL": "INFO",
    }
    servers: list[Server] = [
        make_server(data_dir=tmp_path / f"i{n}", kill_agents_on_shutdown=False, **env) for n in range(3)
    ]
    ids = {id(s): _instance_id(s) for s in servers}
    db = servers[0]
    api = db.client
    api.post("/api/queue/settings", json={"key": "paused", "value": True})
    api.post("/api/queue/settings", json={"key": "stop_on_failure", "value": False})
    api.post("/api/queue/settings", json={"key": "max_concurrent", "value": MAX_CONCURRENT})
    for i in range(TASKS):
        assert api.post("/api/tasks", json={"id": f"c{i:03d}", "title": f"chaos {i}"}).status_code == 201
        assert api.post(f"/api/queue/add/c{i:03d}").status_code == 201
    api.post("/api/queue/settings", json={"key": "paused", "value": False})

    rng = random.Random(7)
    orphans: dict[str, str] = {}  # agent id -> the instance that was stopped while it held the agent
    kills = 0
    zombie: tuple[Server, set[str]] | None = None
    deadline = time.monotonic() + DEADLINE_SECONDS
    next_kill = time.monotonic() + rng.uniform(1.0, 2.0)
    while True:
        alive = next(s for s in servers if s.proc is not None)
        status = alive.client.get("/api/queue").json()
        if status["queued"] == 0 and status["processing"] == 0:
            break
        assert time.monotonic() < deadline, (kills, zombie is not None, status)
        if time.monotonic() >= next_kill and (kills < KILLS or zombie is None):
            busy = [s for s in servers if s.proc is not None and _busy(s)]
            if not busy:
                time.sleep(0.05)
                continue
            victim = rng.choice(busy)
            assert victim.proc is not None
            if kills >= KILLS // 2 and zombie is None:
                victim.proc.send_signal(signal.SIGSTOP)
                try:
                    held = _held(db, ids[id(victim)])
                    if "running" in held.values():
                        # its heartbeat stops with it: once it lapses, the others adopt what it held
                        frozen_until = time.monotonic() + LAPSE_SECONDS + 30
                        while ids[id(victim)] in _owners(db, set(held)).values():
                            assert time.monotonic() < frozen_until, _owners(db, set(held))
                            time.sleep(0.2)
                        orphans.update(dict.fromkeys(held, ids[id(victim)]))
                        zombie = (victim, set(held))
                finally:
                    victim.proc.send_signal(signal.SIGCONT)
            else:
                victim.crash()
                held = _held(db, ids[id(victim)])
                if "running" in held.values():
                    kills += 1
                    orphans.update(dict.fromkeys(held, ids[id(victim)]))
                time.sleep(rng.uniform(0.2, 1.0))
                victim.start()  # same data directory and address, new process, new instance id
                ids[id(victim)] = _instance_id(victim)
            next_kill = time.monotonic() + rng.uniform(0.5, 1.5)
        time.sleep(0.1)

    assert kills == KILLS, f"the queue ran out after {kills} kills"
    assert zombie is not None, "no instance was frozen while it held an agent"

    per_task = db.query(
        "SELECT t.id, t.status, count(a.id) FROM tasks t LEFT JOIN agents a ON a.task_id = t.id "
        "AND a.end_reason IS DISTINCT FROM 'never_started' GROUP BY t.id"
    )
    assert len(per_task) == TASKS
    wrong = [task_id for task_id, status, n in per_task if (status, n) != ("completed", 1)]
    assert wrong == [], [
        (
            db.query(
                "SELECT id, status, instance_id, created_at, started_at, completed_at, end_reason "
                f"FROM agents WHERE task_id = '{task_id}' ORDER BY created_at"
            ),
            db.query(
                "SELECT id, status, agent_id, instance_id, started_at, completed_at, error FROM queue "
                f"WHERE task_id = '{task_id}'"
            ),
            {"frozen": ids[id(zombie[0])] if zombie else None, "orphans": orphans},
        )
        for task_id in wrong[:3]
    ]
    items = db.query("SELECT task_id, status FROM queue")
    assert sorted(t for t, _ in items) == sorted(f"c{i:03d}" for i in range(TASKS))
    assert {s for _, s in items} == {"completed"}
    never_started = db.query("SELECT count(*) FROM agents WHERE end_reason = 'never_started'")[0][0]

    # every agent a stopped instance held went to another instance, which adopted it (or, when its
    # process had not been started yet, ended it as never started and queued its task again)
    logs = "\n".join(s.log() for s in servers)
    ended = {
        str(a): (str(st), str(r or "")) for a, st, r in db.query("SELECT id, status, end_reason FROM agents")
    }
    for agent_id, owner in _owners(db, set(orphans)).items():
        assert owner != orphans[agent_id], agent_id
        status, end_reason = ended[agent_id]
        adopted = f"adopted agent {agent_id}" in logs
        assert (status == "completed" and adopted) or end_reason == "never_started", (
            agent_id,
            status,
            end_reason,
        )
    adoptions = sum(f"adopted agent {a}" in logs for a in orphans)
    assert adoptions >= KILLS, f"only {adoptions} agents adopted after {KILLS} kills and a freeze"
    # the frozen instance woke up and went on writing what it had read (lines, or the end when it had
    # stored every line before the freeze): refused, as no longer its own
    woken, held = zombie
    refused = [
        a
        for a in held
        if f"agent {a} was taken over by another instance" in woken.log()
        or f"agent {a} had ended or moved to another instance" in woken.log()
    ]
    assert refused, f"the woken instance never tried to write for {sorted(held)}"

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
    print(
        f"chaos: tasks={TASKS} kills={kills} orphans={len(orphans)} adoptions={adoptions} "
        f"refused_after_waking={len(refused)} never_started={never_started}"
    )
