"""Queue slot-to-agent delay: max_concurrent=1 and N tasks queued; for each consecutive pair, how long
after one item ended the next one started (the item's `started_at`, i.e. its claim) and how long until
the next agent's process started (the agent's `started_at`), beside Popen of /bin/true measured in the
same run. Agents are a script that prints one result line, so the queue's own path is what is timed:
agent ends → store → queue woken → claim → spawn.

Every figure comes from the server's timestamps (tasks/s ends at the last item's `completed_at`), so the
bench waits for the runs by watching their exit-code files and asks GET /api/queue only once they are
over: its polls would otherwise load the very path they time."""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    baseline_true_spawn,
    bench_server,
    percentile,
    seconds_between,
    tiny_claude,
    wait_drained,
    wait_exited,
)
from orchestrator.clock import parse_iso

DRAINED_POLL_SECONDS = 0.05


def main(n: int = 30) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, bench_server(CLAUDE_BIN=tiny_claude(Path(tmp))) as (server, _):
        client = server.client
        for key, value in (("paused", True), ("max_concurrent", 1), ("stop_on_failure", False)):
            assert client.post("/api/queue/settings", json={"key": key, "value": value}).status_code == 200
        for i in range(n):
            assert (
                client.post("/api/tasks", json={"id": f"q-{i:03d}", "title": f"queued {i}"}).status_code
                == 201
            )
            assert client.post(f"/api/queue/add/q-{i:03d}").status_code == 201
        start = time.time()
        assert client.post("/api/queue/settings", json={"key": "paused", "value": False}).status_code == 200
        wait_exited(server, n, 120)
        status = wait_drained(client, 60, DRAINED_POLL_SECONDS)
        wall = max(parse_iso(i["completed_at"]).timestamp() for i in status["completed"]) - start
        items = sorted(status["completed"], key=lambda i: i["started_at"])
        agents = {a["id"]: a for a in client.get("/api/agents", params={"limit": 500}).json()["items"]}
    assert len(items) == n and all(i["status"] == "completed" for i in items), items
    claim_gaps = [seconds_between(a["completed_at"], b["started_at"]) for a, b in itertools.pairwise(items)]
    agent_gaps = [
        seconds_between(agents[a["agent_id"]]["completed_at"], agents[b["agent_id"]]["started_at"])
        for a, b in itertools.pairwise(items)
    ]
    true_spawn = baseline_true_spawn()
    results = {
        "item_gap_p50_ms": percentile(claim_gaps, 50) * 1000,
        "item_gap_p99_ms": percentile(claim_gaps, 99) * 1000,
        "agent_gap_p50_ms": percentile(agent_gaps, 50) * 1000,
        "agent_gap_p99_ms": percentile(agent_gaps, 99) * 1000,
        "true_spawn_ms": true_spawn * 1000,
        "item_gap_p50_ratio_to_true": percentile(claim_gaps, 50) / true_spawn,
        "agent_gap_p50_ratio_to_true": percentile(agent_gaps, 50) / true_spawn,
        "tasks_per_second": n / wall,
        "n": n,
    }
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
