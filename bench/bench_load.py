"""The service's own cost per agent under load: N agents spawned at once (the real `claude` CLI against
the fake model, each reply delayed so the runs overlap), for N = 100 beside N = 10 measured in the same
run. Figures: the server process's CPU seconds (utime + stime from /proc, agents not counted) from the
first spawn until the last agent ended, and its RSS growth over the run, both per agent; the ratio of
the 100-agent figure per agent to the 10-agent one (1.0 = the cost per agent does not grow with load).

Responsiveness: 30 agents spawned at once (30 requests in flight together) while one prober asks
`GET /api/health` and `GET /api/agents` (a page of 50) in turn, 10 times a second, until every agent has
ended; its p99 beside the same prober's p99 on the idle server just before, and the wall of the 30 spawn
requests beside one spawn request on the idle server."""

from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench.common import RssPeak, bench_server, cpu_seconds, percentile, rss_mb, server_pid, wait_exited
from tests.support import fake_anthropic as fm
from tests.support.server import Server

REPLY_SECONDS = 1.0


def _wait_all_ended(server: Server, ids: list[str], timeout: float) -> dict[str, int]:
    """Once every agent process has exited (seen in the run directories, not asked of the service),
    one page of agents every 50 ms until all have ended: polls of the API while the agents run would
    load the very service whose CPU is measured."""
    wait_exited(server, ids, timeout)
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
        time.sleep(0.05)


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


class Prober:
    """Times `GET /api/health` and `GET /api/agents?limit=50` in turn every `every` seconds, until stopped."""

    def __init__(self, server: Server, every: float = 0.1) -> None:
        self.server, self.every = server, every
        self.times: dict[str, list[float]] = {"health": [], "agents": []}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.url, headers=self.server.headers, timeout=60) as client:
            while not self._stop.is_set():
                for name, path, params in (
                    ("health", "/api/health", {}),
                    ("agents", "/api/agents", {"limit": 50}),
                ):
                    start = time.perf_counter()
                    client.get(path, params=params).raise_for_status()
                    self.times[name].append(time.perf_counter() - start)
                self._stop.wait(self.every)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def p99_ms(self, name: str) -> float:
        return percentile(self.times[name], 99) * 1000


def responsiveness(agents: int = 30, idle_seconds: float = 5.0) -> dict[str, Any]:
    with bench_server() as (server, fake):
        marker = fake.scenario([fm.text("done", delay=REPLY_SECONDS)], repeat_last=True)
        body = {"agent_type": "coding", "prompt": f"Say done. {marker}"}
        with Prober(server) as idle:
            time.sleep(idle_seconds)
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=300) as client:
            start = time.perf_counter()
            first = client.post("/api/agents/spawn", json=body)
            one_spawn = time.perf_counter() - start
            assert first.status_code == 201, first.text
            _wait_all_ended(server, [first.json()["id"]], timeout=120)
            with Prober(server) as busy, ThreadPoolExecutor(agents) as pool:
                start = time.perf_counter()
                answers = list(pool.map(lambda _: client.post("/api/agents/spawn", json=body), range(agents)))
                spawns = time.perf_counter() - start
                bad = [a.text for a in answers if a.status_code != 201]
                assert not bad, bad[:3]
                _wait_all_ended(server, [a.json()["id"] for a in answers], timeout=600 + agents * 10)
    return {
        "agents": agents,
        "idle_health_p99_ms": idle.p99_ms("health"),
        "idle_agents_p99_ms": idle.p99_ms("agents"),
        "busy_health_p99_ms": busy.p99_ms("health"),
        "busy_agents_p99_ms": busy.p99_ms("agents"),
        "probes": len(busy.times["health"]),
        "one_spawn_s": one_spawn,
        "spawns_together_s": spawns,
    }


def main(small: int = 10, large: int = 100, responsive: int = 30) -> dict[str, Any]:
    base = measure(small)
    load = measure(large)
    results = {
        "responsive": responsiveness(responsive),
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
    parser.add_argument("--responsive", type=int, default=30, help="agents of the responsiveness run")
    args = parser.parse_args()
    main(args.small, args.large, args.responsive)
