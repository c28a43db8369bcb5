"""GET /metrics through the real server: Prometheus text that agrees with the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.metrics import DelayHistogram, seconds_between
from tests.conftest import ServerFactory
from tests.support import fake_anthropic as fm
from tests.support.server import Server

SSE = {"Accept": "text/event-stream"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: Server) -> Samples:
    response = server.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_metrics_agree_with_the_api(server: Server, fake_model: fm.FakeAnthropic) -> None:
    ok = fake_model.scenario([fm.tool("Bash", {"command": "echo hi"}), fm.text("done")])
    agents = [
        server.wait_agent(server.spawn(f"a {ok}", agent_type=kind)["id"]) for kind in ("coding", "reviewer")
    ]
    task = server.client.post("/api/tasks", json={"title": "queued work", "description": f"go {ok}"}).json()
    assert server.client.post(f"/api/queue/add/{task['id']}").status_code == 201
    eventually(lambda: server.client.get(f"/api/tasks/{task['id']}").json()["status"] == "completed")
    event = {"id": "evt-m1", "type": "deploy.requested", "task_id": task["id"]}
    assert server.client.post("/api/events", json=event).status_code == 201
    assert server.client.post("/api/events/evt-m1/processed").status_code == 200

    samples = scrape(server)
    stats = server.client.get("/api/agents/analytics").json()
    everyone = server.client.get("/api/agents").json()["items"]
    assert stats["total"] == 3 == len(everyone)
    for status in ("starting", "running", "completed", "failed", "timeout", "killed"):
        assert value(samples, "orchestrator_agents_by_status", status=status) == stats["by_status"].get(
            status, 0
        )
    for kind in ("coding", "reviewer", "starter", "deployer", "verifier", "auditor"):
        assert value(samples, "orchestrator_agents_by_type", agent_type=kind) == stats["by_type"].get(kind, 0)
    assert value(samples, "orchestrator_agent_cost_usd_total") == stats["total_cost_usd"] > 0
    assert value(samples, "orchestrator_agent_tokens_total", direction="input") == stats["total_input_tokens"]
    assert (
        value(samples, "orchestrator_agent_tokens_total", direction="output") == stats["total_output_tokens"]
    )
    assert value(samples, "orchestrator_log_lines_written_total") == sum(a["log_lines"] for a in everyone) > 0
    assert value(samples, "orchestrator_agents_spawned_total") == 3
    assert value(samples, "orchestrator_queue_started_total") == 1

    assert value(samples, "orchestrator_agent_spawn_delay_seconds_count") == 3
    assert value(samples, "orchestrator_agent_spawn_delay_seconds_bucket", le="+Inf") == 3
    spawn_sum = value(samples, "orchestrator_agent_spawn_delay_seconds_sum")
    assert 0 <= spawn_sum < 30
    assert value(samples, "orchestrator_queue_delay_seconds_count") == 1
    assert value(samples, "orchestrator_event_handling_delay_seconds_count") == 1
    assert value(samples, "orchestrator_events", status="processed") == 1
    assert value(samples, "orchestrator_queue_depth") == 0
    assert value(samples, "orchestrator_queue_processing") == 0

    again = scrape(server)
    assert value(again, "orchestrator_agent_spawn_delay_seconds_count") == 3, "each delay observed once"
    assert value(again, "orchestrator_agent_spawn_delay_seconds_sum") == spawn_sum
    assert agents[0]["status"] == "completed"


def test_queue_gauges_and_sse_clients(server: Server, fake_model: fm.FakeAnthropic) -> None:
    server.client.post("/api/queue/settings", json={"key": "paused", "value": True})
    for title in ("one", "two"):
        task = server.client.post("/api/tasks", json={"title": title}).json()
        assert server.client.post(f"/api/queue/add/{task['id']}").status_code == 201
    samples = scrape(server)
    assert value(samples, "orchestrator_queue_depth") == 2
    assert value(samples, "orchestrator_queue_paused") == 1
    assert value(samples, "orchestrator_queue_max_concurrent") == 1
    assert value(samples, "orchestrator_sse_clients") == 0

    slow = fake_model.scenario([fm.tool("Bash", {"command": f"echo {i}"}, delay=0.5) for i in range(6)])
    agent = server.spawn(f"slow {slow}")
    with server.client.stream("GET", f"/api/agents/{agent['id']}/logs", headers=SSE, timeout=60) as response:
        lines = response.iter_lines()  # held: dropping the iterator would close the connection
        assert next(lines).startswith("id:")
        assert value(scrape(server), "orchestrator_sse_clients") == 1
        assert value(scrape(server), "orchestrator_agents_running_here") == 1
    eventually(lambda: value(scrape(server), "orchestrator_sse_clients") == 0)
    server.client.post(f"/api/agents/{agent['id']}/kill")


def test_metrics_need_the_token_like_the_api(make_server: ServerFactory) -> None:
    server = make_server(ORCHESTRATOR_API_TOKEN="metrics-token-5678")
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    samples = scrape(server)  # the server's client sends the bearer token
    assert value(samples, "orchestrator_agents_by_status", status="running") == 0


def test_openmetrics_when_asked(server: Server) -> None:
    response = server.client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_delay_histogram_observes_each_row_once_and_forgets_rows_out_of_the_window() -> None:
    histogram = DelayHistogram("d_seconds", "doc", key=lambda r: r["id"], delay=lambda r: r.get("d"))
    histogram.feed([{"id": 1, "d": 0.2}, {"id": 2, "d": None}])
    histogram.feed([{"id": 1, "d": 0.2}, {"id": 2, "d": 3.0}])  # 2 has started since
    histogram.feed([{"id": 3, "d": 4000.0}, {"id": 2, "d": 3.0}])  # 1 left the window
    assert histogram.count == 3
    buckets = {s.labels.get("le"): s.value for s in histogram.family().samples if s.name.endswith("_bucket")}
    assert buckets["0.25"] == 1 and buckets["5.0"] == 2 and buckets["1800.0"] == 2 and buckets["+Inf"] == 3
    assert seconds_between("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.500Z") == 1.5
    assert seconds_between(None, "2026-01-01T00:00:01.500Z") is None
    assert seconds_between("garbage", "2026-01-01T00:00:01.500Z") is None
