"""Throughput of one instance against three on the same work, on one PostgreSQL: N tasks queued, agents
a script that prints a few lines over ~0.3 s, the same global max_concurrent; tasks per second from the
queue opening to the last item ending, and the peak of agents running at once (from the database).

    .venv/bin/python -m bench.bench_instances [--tasks N] [--max-concurrent C] [--pg-url URL]

Without --pg-url it starts the tests' PostgreSQL with scripts/ci-postgres (and stops it after, unless it
was running before). Prints one JSON dict."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.common import wait_drained
from orchestrator.store.db import driver_url
from tests.support.postgres import new_database
from tests.support.server import Server

ROOT = Path(__file__).resolve().parent.parent
CI_POSTGRES = ROOT / "scripts" / "ci-postgres"
AGENT = """#!/bin/sh
echo '{"type":"system","subtype":"init","session_id":"bench"}'
for i in 1 2 3 4 5 6; do echo "{\\"type\\":\\"bench\\",\\"line\\":$i}"; sleep 0.05; done
echo '{"type":"result","subtype":"success","is_error":false,"result":"ok"}'
"""


def _peak(rows: list[tuple[str, str]]) -> int:
    edges = sorted([(s, 1) for s, _ in rows] + [(e, -1) for _, e in rows])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def _run(pg_url: str, instances: int, tasks: int, max_concurrent: int, tmp: Path) -> dict[str, Any]:
    script = tmp / "claude"
    script.write_text(AGENT)
    script.chmod(0o755)
    database = new_database(pg_url, prefix="bench")
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "DATABASE_URL": database,
        "CLAUDE_BIN": str(script),
        "LOG_LEVEL": "WARNING",
        "SPAWN_RATE_PER_MINUTE": "1000000",
    }
    servers = [Server(tmp / f"{instances}-{n}", env) for n in range(instances)]
    try:
        for server in servers:
            server.start()
        api = servers[0].client
        for key, value in (("paused", True), ("stop_on_failure", False), ("max_concurrent", max_concurrent)):
            assert api.post("/api/queue/settings", json={"key": key, "value": value}).status_code == 200
        for i in range(tasks):
            assert api.post("/api/tasks", json={"id": f"b{i:04d}", "title": f"bench {i}"}).status_code == 201
            assert api.post(f"/api/queue/add/b{i:04d}").status_code == 201
        start = time.perf_counter()
        api.post("/api/queue/settings", json={"key": "paused", "value": False})
        wait_drained(api, 600)
        wall = time.perf_counter() - start
        engine = create_engine(driver_url(database))
        with engine.connect() as conn:
            spans = [
                (str(s), str(e))
                for s, e in conn.execute(text("SELECT started_at, completed_at FROM agents")).all()
            ]
            by_instance = dict(
                conn.execute(text("SELECT instance_id, count(*) FROM agents GROUP BY instance_id")).all()
            )
        engine.dispose()
    finally:
        for server in servers:
            server.close()
    return {
        "instances": instances,
        "tasks_per_second": tasks / wall,
        "wall_seconds": wall,
        "agents": len(spans),
        "peak_running": _peak(spans),
        "agents_per_instance": sorted(by_instance.values()),
    }


def _tests_postgres() -> tuple[str, bool]:
    """The tests' PostgreSQL (scripts/ci-postgres): its URL, and whether this call started it."""
    port = int(os.environ.get("ORCHESTRATOR_TEST_PG_PORT", "55432"))
    with socket.socket() as probe:
        running = probe.connect_ex(("127.0.0.1", port)) == 0
    started = subprocess.run([str(CI_POSTGRES)], capture_output=True, text=True, check=True)
    return started.stdout.strip(), not running


def main(tasks: int = 120, max_concurrent: int = 8, pg_url: str | None = None) -> dict[str, Any]:
    url, ours = (pg_url, False) if pg_url else _tests_postgres()
    try:
        with tempfile.TemporaryDirectory(prefix="orch-bench-instances-") as tmp:
            one = _run(url, 1, tasks, max_concurrent, Path(tmp))
            three = _run(url, 3, tasks, max_concurrent, Path(tmp))
    finally:
        if ours:  # one that was running before is left running
            subprocess.run([str(CI_POSTGRES), "stop"], capture_output=True, check=False)
    return {
        "tasks": tasks,
        "max_concurrent": max_concurrent,
        "one_instance": one,
        "three_instances": three,
        "three_to_one_throughput_ratio": three["tasks_per_second"] / one["tasks_per_second"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=120)
    parser.add_argument("--max-concurrent", type=int, default=8)
    parser.add_argument("--pg-url", default=None)
    args = parser.parse_args()
    print(json.dumps(main(args.tasks, args.max_concurrent, args.pg_url), indent=2))
