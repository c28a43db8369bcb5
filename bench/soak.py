"""An on-demand soak, not run in CI: tasks go through the queue without a break for `--minutes` (default
30), each run by a short script agent, while the server's RSS and open file descriptors are sampled
from /proc every `--sample-seconds`. Prints JSON: tasks done, the samples' first 10% beside their last
10%, and whether RSS or descriptors grew.

    .venv/bin/python -m bench.soak --minutes 30
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULT_LINE, bench_server, rss_mb, server_pid
from tests.support.server import Server

BACKLOG = 4
RSS_GROWTH_TOLERANCE = 0.10  # the last tenth's mean RSS may be this much above the first tenth's
FD_GROWTH_TOLERANCE = 5


def soak_claude(directory: Path) -> str:
    """A `claude` that prints a few stream-json lines and a result, in a fraction of a second."""
    script = directory / "claude"
    script.write_text(
        "#!/bin/sh\n"
        'echo \'{"type":"system","subtype":"init","session_id":"soak"}\'\n'
        'for i in 1 2 3 4 5; do echo "{\\"type\\":\\"assistant\\",\\"n\\":$i}"; done\n'
        "sleep 0.2\n"
        f"echo '{RESULT_LINE}'\n"
    )
    script.chmod(0o755)
    return str(script)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _queue(server: Server, number: int) -> str:
    task_id = f"soak-{number:06d}"
    created = server.client.post("/api/tasks", json={"id": task_id, "title": f"soak {number}"})
    assert created.status_code == 201, created.text
    added = server.client.post(f"/api/queue/add/{task_id}")
    assert added.status_code == 201, added.text
    return task_id


def _tenth(samples: list[dict[str, float]], key: str, last: bool) -> float:
    k = max(1, len(samples) // 10)
    part = samples[-k:] if last else samples[:k]
    return statistics.fmean(s[key] for s in part)


def soak(minutes: float, sample_seconds: float, concurrency: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="orch-soak-") as tmp,
        bench_server(CLAUDE_BIN=soak_claude(Path(tmp))) as (server, _fake),
    ):
        client = server.client
        for key, value in (("max_concurrent", concurrency), ("stop_on_failure", False)):
            assert client.post("/api/queue/settings", json={"key": key, "value": value}).status_code == 200
        pid = server_pid(server)
        samples: list[dict[str, float]] = []
        ended = {"completed": 0, "failed": 0}
        waiting: list[str] = []
        number = 0
        start = time.monotonic()
        end = start + minutes * 60
        next_sample = start
        while time.monotonic() < end:
            for task_id in list(waiting):
                status = client.get(f"/api/tasks/{task_id}").json()["status"]
                if status in ended:
                    ended[status] += 1
                    waiting.remove(task_id)
            while len(waiting) < BACKLOG + concurrency:
                waiting.append(_queue(server, number))
                number += 1
            now = time.monotonic()
            if now >= next_sample:
                samples.append({"t": now - start, "rss_mb": rss_mb(pid), "fds": open_fds(pid)})
                next_sample += sample_seconds
            time.sleep(0.2)
        agents = client.get("/api/agents/analytics").json()
    first_rss, last_rss = _tenth(samples, "rss_mb", False), _tenth(samples, "rss_mb", True)
    first_fds, last_fds = _tenth(samples, "fds", False), _tenth(samples, "fds", True)
    return {
        "minutes": minutes,
        "tasks_completed": ended["completed"],
        "tasks_failed": ended["failed"],
        "agents": agents,
        "samples": len(samples),
        "rss_mb_first_tenth": first_rss,
        "rss_mb_last_tenth": last_rss,
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "fds_first_tenth": first_fds,
        "fds_last_tenth": last_fds,
        "fds_max": max(s["fds"] for s in samples),
        "rss_grew": last_rss > first_rss * (1 + RSS_GROWTH_TOLERANCE),
        "fds_grew": last_fds > first_fds + FD_GROWTH_TOLERANCE,
    }


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=2, help="the queue's max_concurrent")
    args = parser.parse_args()
    results = soak(args.minutes, args.sample_seconds, args.concurrency)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
