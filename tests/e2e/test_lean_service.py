"""What the service skips for a lighter process changes no answer: an anonymous GET /api/health answered
before routing says what the route says, and /metrics, whose library loads at the first scrape, works.
What it does ahead is there before it is asked for: the blanks of the first agents."""

from __future__ import annotations

import time

import httpx

from orchestrator.agents.blanks import FOLDER, READY
from tests.conftest import ServerFactory
from tests.e2e.test_lean_process import imported_modules
from tests.support.server import Server


def _shown(answer: httpx.Response) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
    headers = tuple(sorted((k, v) for k, v in answer.headers.items() if k not in ("date", "server")))
    return answer.status_code, answer.content, headers


def test_anonymous_health_from_fresh_checks_is_the_routes_answer_and_metrics_load_when_scraped(
    make_server: ServerFactory,
) -> None:
    server = make_server(PYTHONPROFILEIMPORTTIME="1")
    with httpx.Client(base_url=server.url) as anonymous:
        # the route's anonymous answer (a wrong token goes to the route, which tells it nothing more)
        routed = anonymous.get("/api/health", headers={"Authorization": "Bearer wrong"})
        assert routed.json() == {"status": "ok"}
        # right after, the checks are fresh: these are answered before routing
        answers = [anonymous.get("/api/health") for _ in range(20)]
    assert {_shown(a) for a in answers} == {_shown(routed)}
    detailed = server.client.get("/api/health").json()
    assert detailed["database"] == "ok" and detailed["instance_id"], "a caller with the token: the route"

    assert "prometheus_client" not in imported_modules(server.log()), "loaded before any scrape"
    scraped = server.client.get("/metrics")
    assert scraped.status_code == 200 and "orchestrator_agents" in scraped.text
    assert "prometheus_client" in imported_modules(server.log())
    assert server.client.get("/metrics").status_code == 200, "the registry built once serves again"


def test_the_first_agents_blanks_are_made_while_the_service_idles_before_them(
    server: Server,
) -> None:
    def ready(parent: str) -> int:
        folders = (server.data_dir / parent / FOLDER).glob("*/*")
        return sum(not p.name.endswith(".part") for p in folders)

    deadline = time.monotonic() + 20
    while min(ready("runs"), ready("workspaces")) < READY:
        assert time.monotonic() < deadline, (ready("runs"), ready("workspaces"))
        time.sleep(0.05)
