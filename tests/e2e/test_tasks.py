"""The tasks resource."""

from __future__ import annotations

import pytest

from tests.support.server import Server


def test_task_crud(server: Server) -> None:
    created = server.client.post(
        "/api/tasks",
        json={"title": "Add a README", "description": "short", "repos": ["app", "lib"], "priority": 3},
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["status"] == "pending"
    assert task["repo"] == "app"
    assert task["repos"] == ["app", "lib"]

    assert server.client.get(f"/api/tasks/{task['id']}").json()["title"] == "Add a README"
    patched = server.client.patch(
        f"/api/tasks/{task['id']}", json={"title": "Add a good README", "priority": 5}
    )
    assert patched.status_code == 200
    assert (patched.json()["title"], patched.json()["priority"]) == ("Add a good README", 5)

    listed = server.client.get("/api/tasks", params={"status": "pending"}).json()
    assert [t["id"] for t in listed["items"]] == [task["id"]]
    assert server.client.get("/api/tasks", params={"status": "completed"}).json()["total"] == 0

    assert server.client.delete(f"/api/tasks/{task['id']}").status_code == 204
    assert server.client.get(f"/api/tasks/{task['id']}").status_code == 404


def test_invalid_status_moves_are_refused(server: Server) -> None:
    task = server.client.post("/api/tasks", json={"id": "t-moves", "title": "x"}).json()
    assert server.client.patch("/api/tasks/t-moves", json={"status": "completed"}).status_code == 200
    refused = server.client.patch("/api/tasks/t-moves", json={"status": "in_progress"})
    assert refused.status_code == 409
    assert "status" in refused.json()["detail"]
    assert server.client.get(f"/api/tasks/{task['id']}").json()["status"] == "completed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x", "repo": "../etc"}, "repo"),
        ({"title": "x", "repos": ["ok", "-bad"]}, "repos"),
        ({"title": "x", "id": "../../x"}, "id"),
        ({"title": "x", "priority": "high"}, "priority"),
        ({"title": "x", "status": "completed"}, "status"),
    ],
)
def test_bad_task_bodies_name_the_field(server: Server, body: dict[str, object], field: str) -> None:
    response = server.client.post("/api/tasks", json=body)
    assert response.status_code == 422
    assert field in response.json()["detail"]
    assert server.client.get("/api/tasks").json()["total"] == 0


def test_duplicate_task_id_is_409(server: Server) -> None:
    assert server.client.post("/api/tasks", json={"id": "same", "title": "a"}).status_code == 201
    again = server.client.post("/api/tasks", json={"id": "same", "title": "b"})
    assert again.status_code == 409
    assert server.client.get("/api/tasks/same").json()["title"] == "a"
