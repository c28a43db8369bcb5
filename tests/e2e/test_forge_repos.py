"""A task's repository that is not under PROJECTS_DIR comes from GITHUB_GIT_URL (a real git server over
smart HTTP on loopback that requires the token) through the service's mirror; real `claude` agents."""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path
from typing import Any

from tests.support import fake_anthropic as fm
from tests.support.fake_github import FakeGitHub
from tests.support.git_http import GitHttpServer
from tests.support.server import Server

STARTER = "You are the starter agent"


def _queue(server: Server, repo: str, description: str) -> str:
    task = server.client.post("/api/tasks", json={"title": "Look", "description": description, "repo": repo})
    assert task.status_code == 201, task.text
    task_id = str(task.json()["id"])
    assert server.client.post(f"/api/queue/add/{task_id}").status_code == 201
    return task_id


def _wait_ended(server: Server, task_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = server.client.get(f"/api/tasks/{task_id}").json()
        if task["status"] in ("completed", "failed"):
            return dict(task)
        assert time.monotonic() < deadline, f"task still {task['status']}\n{server.log()}"
        time.sleep(0.1)


def _files_with(root: Path, secrets: list[str]) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and any(s.encode() in p.read_bytes() for s in secrets)
    ]


def test_a_repository_only_on_the_forge_becomes_the_agents_checkout_with_no_token_on_disk(
    make_server,
    workflow_env: dict[str, str],
    fake_model: fm.FakeAnthropic,
    github: FakeGitHub,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "no-projects"
    empty.mkdir()
    server = make_server(**{**workflow_env, "PROJECTS_DIR": str(empty)}, WORKSPACE_CLEANUP="never")
    marker = fake_model.roles(
        {
            STARTER: [
                [fm.tool("Bash", {"command": "cat README.md", "description": "read"}), fm.text("no plan")]
            ]
        }
    )
    task = _wait_ended(server, _queue(server, "calc", f"Read. {marker}"))
    assert task["status"] == "failed" and "without a valid outcome" in task["error"], task["error"]

    checkout = server.data_dir / "workspaces" / "tasks" / task["id"] / "calc"
    assert (checkout / "README.md").read_text() == "# calc\n"
    tool_results = str(fake_model.requests_for(f"{marker[len('[[scenario:') : -2]}.{STARTER}.0"))
    assert "# calc" in tool_results
    basic = base64.b64encode(f"x-access-token:{github.token}".encode()).decode()
    assert _files_with(server.data_dir, [github.token, basic]) == []
    assert (server.data_dir / "mirrors" / "acme" / "calc.git" / "HEAD").is_file()


def test_an_unknown_repository_is_refused_at_queue_time_naming_it(
    make_server, workflow_env: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(**workflow_env)
    task = server.client.post("/api/tasks", json={"title": "Nope", "repo": "nothere"}).json()
    answer = server.client.post(f"/api/queue/add/{task['id']}")
    assert answer.status_code == 422, answer.text
    assert "repo" in answer.text and "'acme/nothere'" in answer.text
    assert server.client.get(f"/api/tasks/{task['id']}").json()["status"] == "pending"
    assert not (server.data_dir / "mirrors" / "acme" / "nothere.git").exists()


def test_a_repository_gone_by_the_time_the_task_starts_fails_it_with_the_reason(
    make_server,
    workflow_env: dict[str, str],
    fake_model: fm.FakeAnthropic,
    git_host: GitHttpServer,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "no-projects"
    empty.mkdir()
    server = make_server(**{**workflow_env, "PROJECTS_DIR": str(empty)}, WORKSPACE_CLEANUP="never")
    assert server.client.post("/api/queue/settings", json={"key": "paused", "value": True}).status_code == 200
    marker = fake_model.roles({STARTER: [[fm.text("should never run")]]})
    task_id = _queue(server, "calc", f"Nothing. {marker}")
    shutil.rmtree(git_host.root / "acme" / "calc.git")
    assert (
        server.client.post("/api/queue/settings", json={"key": "paused", "value": False}).status_code == 200
    )
    task = _wait_ended(server, task_id)
    assert task["status"] == "failed"
    assert "could not prepare the checkout" in task["error"] and "'acme/calc'" in task["error"], task["error"]
    assert task["agents"] == []
    assert not (server.data_dir / "workspaces" / "tasks" / task["id"] / "calc").exists()
