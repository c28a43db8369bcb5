"""The service's own cost per agent under load: N agents spawned at once (the real `claude` CLI against
the fake model, each reply delayed so the runs overlap), for N = 100 beside N = 10 measured in the same
run. Figures: the server process's CPU seconds (utime + stime from /proc, agents not counted) from the
first spawn until the last agent ended, and its RSS growth over the run, both per agent; the ratio of
the 100-agent figure per agent to the 10-agent one (1.0 = the cost per agent does not grow with load)."""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench.common import RssPeak, bench_server, cpu_seconds, rss_mb, server_pid
from tests.support import fake_anthropic as fm
from tests.support.server import Server

REPLY_SECONDS = 1.0


def _wait_all_ended(server: Server, ids: list[str], timeout: float) -> dict[str, int]:
    """One page of agents a second (not a GET per agent: 100 of those every half second loaded the very
    service whose CPU is measured)."""
    deadline = time.monotonic() + timeout
    wanted = set(ids)
    while True:
        page = server.client.get("/api/agents", params={"limit": 500}).json()["items"]
        statuses = [a["status"] for a in page if a["id"] in wanted]
        ended = [s for s in statuses if s in ("completed", "failed", "timeout", "killed")]
        if len(ended) == len(wanted):
            return {status: ended.count(status) for status in set(ended)}
        if time.monotonic() > deadline:
            left = len(wanted) - len(ended)
            raise AssertionError(f"{left} of {len(ids)} agents not ended after {timeout} s")
        time.sleep(1.0)


def measure(agents: int) -> dict[str, Any]:
    with bench_server() as (server, fake):
        marker = fake.scenario([fm.text("done", delay=REPLY_SECONDS)], repeat_last=True)
        pid = server_pid(server)
        body = {"agent_type": "coding", "prompt": f"Say done. {marker}"}
        rss_start = rss_mb(pid)
        cpu_start = cpu_seconds(pid)
        start = time.perf_counter()
        with (
            RssPeak(pid) as peak,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=300) as client,
            ThreadPoolExecutor(8) as pool,
        ):
            answers = list(pool.map(lambda _: client.post("/api/agents/spawn", json=body), range(agents)))
            bad = [a.text for a in answers if a.status_code != 201]
            assert not bad, bad[:3]
            statuses = _wait_all_ended(server, [a.json()["id"] for a in answers], timeout=600 + agents * 10)
        wall = time.perf_counter() - start
        cpu = cpu_seconds(pid) - cpu_start
    return {
        "agents": agents,
        "statuses": statuses,
        "wall_s": wall,
        "service_cpu_s": cpu,
        "service_cpu_s_per_agent": cpu / agents,
        "service_rss_start_mb": rss_start,
        "service_rss_peak_mb": peak.peak,
        "service_rss_growth_mb_per_agent": (peak.peak - rss_start) / agents,
    }


def main(small: int = 10, large: int = 100) -> dict[str, Any]:
    base = measure(small)
    load = measure(large)
    results = {
        "baseline": base,
        "load": load,
        "cpu_per_agent_ratio": load["service_cpu_s_per_agent"] / base["service_cpu_s_per_agent"],
        "rss_growth_per_agent_ratio": (
            load["service_rss_growth_mb_per_agent"] / base["service_rss_growth_mb_per_agent"]
            if base["service_rss_growth_mb_per_agent"] > 0
            else None
        ),
    }
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=10, help="agents of the baseline run")
    parser.add_argument("--large", type=int, default=100, help="agents of the load run")
    args = parser.parse_args()
    main(args.small, args.large)
