"""Event-to-agent delay with USE_MULTI_AGENT_EVENTS=true: an event is posted for a task and the
workflow starts its agent. Measured from the event's `created_at` to the agent's `started_at` (its
process started), one event at a time, beside Popen of /bin/true measured in the same run.

The path measured: store the event → wake the event processor → claim it → check out the task's
workspace (a fresh repository on the task branch) → spawn. Agents are a script that prints one result line.

Both ends are the server's timestamps, so the bench looks for the agent 10 times a second: its polls of
GET /api/agents would otherwise load the very path they time."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import baseline_true_spawn, bench_server, percentile, seconds_between, tiny_claude
from tests.support.server import Server

EVENT_TYPES = ("task.plan.created", "deploy.completed")
POLL_SECONDS = 0.1


def _started_agent(server: Server, task_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        agents = server.client.get("/api/agents", params={"task_id": task_id}).json()["items"]
        started = [a for a in agents if a["started_at"]]
        if started:
            return dict(started[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"no agent started for {task_id}: {server.log()[-2000:]}")
        time.sleep(POLL_SECONDS)


def main(n: int = 20) -> dict[str, Any]:
    delays: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_server(CLAUDE_BIN=tiny_claude(Path(tmp)), USE_MULTI_AGENT_EVENTS="true") as (server, _),
    ):
        for i in range(n + 2):
            task_id = f"ev-{i}"
            assert (
                server.client.post("/api/tasks", json={"id": task_id, "title": f"event {i}"}).status_code
                == 201
            )
            event = server.client.post(
                "/api/events", json={"type": EVENT_TYPES[i % len(EVENT_TYPES)], "task_id": task_id}
            )
            assert event.status_code == 201, event.text
            agent = _started_agent(server, task_id)
            if i >= 2:  # the first two warm the path up
                delays.append(seconds_between(event.json()["created_at"], agent["started_at"]))
    true_spawn = baseline_true_spawn()
    results = {
        "p50_ms": percentile(delays, 50) * 1000,
        "p99_ms": percentile(delays, 99) * 1000,
        "true_spawn_ms": true_spawn * 1000,
        "p50_ratio_to_true": percentile(delays, 50) / true_spawn,
        "n": len(delays),
    }
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
