"""Bad input gets a clear 4xx that names the field, and writes nothing."""

from __future__ import annotations

import pytest

from tests.support.server import Server


def _agent_count(server: Server) -> int:
    return int(server.client.get("/api/agents").json()["total"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"agent_type": "hacker", "prompt": "x"}, "agent_type"),
        ({"prompt": "x"}, "agent_type"),
        ({"agent_type": "coding"}, "prompt"),
        ({"agent_type": "coding", "prompt": ""}, "prompt"),
        ({"agent_type": "coding", "prompt": "x", "timeout_seconds": -1}, "timeout_seconds"),
        ({"agent_type": "coding", "prompt": "x", "max_turns": 0}, "max_turns"),
        ({"agent_type": "coding", "prompt": "x", "repo": "../../etc"}, "repo"),
        ({"agent_type": "coding", "prompt": "x", "repo": "-rf"}, "repo"),
        ({"agent_type": "coding", "prompt": "x", "model": "--dangerous"}, "model"),
        ({"agent_type": "coding", "prompt": "x", "task_id": "../x"}, "task_id"),
        ({"agent_type": "coding", "prompt": "x", "surprise": 1}, "surprise"),
    ],
)
def test_bad_spawn_bodies_are_refused_naming_the_field(
    server: Server, body: dict[str, object], field: str
) -> None:
    response = server.client.post("/api/agents/spawn", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.json()["detail"]
    assert _agent_count(server) == 0


def test_malformed_json_is_a_4xx(server: Server) -> None:
    response = server.client.post(
        "/api/agents/spawn",
        content=b'{"agent_type": "coding", "prompt": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert _agent_count(server) == 0


def test_spawn_for_unknown_task_without_prompt_is_404(server: Server) -> None:
    response = server.client.post(
        "/api/agents/spawn", json={"agent_type": "coding", "task_id": "no-such-task"}
    )
    assert response.status_code == 404
    assert "task_id" in response.json()["detail"]
    assert _agent_count(server) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/agents/coding-00000000"),
        ("GET", "/api/agents/coding-00000000/logs"),
        ("POST", "/api/agents/coding-00000000/kill"),
        ("POST", "/api/agents/coding-00000000/retry"),
    ],
)
def test_unknown_agent_is_404(server: Server, method: str, path: str) -> None:
    response = server.client.request(method, path)
    assert response.status_code == 404
    assert "coding-00000000" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "sleeping"}, "status"), ({"limit": 0}, "limit"), ({"agent_type": "x"}, "agent_type")],
)
def test_bad_list_filters_name_the_field(server: Server, params: dict[str, object], field: str) -> None:
    response = server.client.get("/api/agents", params=params)
    assert response.status_code == 422
    assert field in response.json()["detail"]


def test_token_guards_every_route_but_health(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(ORCHESTRATOR_API_TOKEN="s3cret-token-value")
    anonymous = server.client.__class__(base_url=server.url)
    try:
        assert anonymous.get("/api/health").status_code == 200
        for method, path in [
            ("GET", "/api/agents"),
            ("POST", "/api/agents/spawn"),
            ("GET", "/api/agents/active"),
        ]:
            response = anonymous.request(method, path, json={})
            assert response.status_code == 401, (path, response.text)
        wrong = anonymous.get("/api/agents", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert server.client.get("/api/agents").status_code == 200
    finally:
        anonymous.close()
    assert "s3cret-token-value" not in server.log()
