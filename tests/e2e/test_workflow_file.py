"""A repository's own `.orchestrator/workflow.toml` through the real server, real `claude` agents and real
git: its coding prompt and model, its skipped stages, and a broken file failing the task at its start."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.e2e.test_workflow import APPROVE, CODING, PLAN, REVIEWER, STARTER, commit, outcome
from tests.support import fake_anthropic as fm
from tests.support.fake_github import FakeGitHub
from tests.support.git_http import GitHttpServer
from tests.support.repos import git
from tests.support.server import Server

REPO_MODEL = "claude-repo-model-7"
WORKFLOW = f"""\
[agents.coding]
model = "{REPO_MODEL}"
max_turns = 7
budget_usd = 3.5
prompt = '''
You are the coding agent of the calc repository, by its own workflow file.
Task $task_id: $title on branch $branch. $description
Costs $$0 to read. End with a JSON block {{"summary": "..."}}.
'''

[stages]
skip = ["deployer", "verifier"]
"""


def _commit_file(repo: Path, text: str, tmp: Path) -> None:
    """`.orchestrator/workflow.toml` committed on main of a bare repository, or at HEAD of a project."""
    bare = (repo / "HEAD").is_file()
    work = tmp / f"seed-{time.monotonic_ns()}" if bare else repo
    if bare:
        git("clone", "--quiet", str(repo), str(work))
    (work / ".orchestrator").mkdir(exist_ok=True)
    (work / ".orchestrator" / "workflow.toml").write_text(text)
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "workflow file", cwd=work)
    if bare:
        git("push", "--quiet", "origin", "HEAD:main", cwd=work)


def _queue(server: Server, description: str) -> str:
    task = server.client.post(
        "/api/tasks", json={"title": "Add calc", "description": description, "repo": "calc"}
    )
    assert task.status_code == 201, task.text
    task_id = str(task.json()["id"])
    assert server.client.post(f"/api/queue/add/{task_id}").status_code == 201
    return task_id


def _wait_task(server: Server, task_id: str, timeout: float = 150) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = server.client.get(f"/api/tasks/{task_id}").json()
        if task["status"] in ("completed", "failed"):
            return dict(task)
        assert time.monotonic() < deadline, f"task still {task['status']}: {task['events']}\n{server.log()}"
        time.sleep(0.1)


def test_the_repositorys_coding_prompt_and_model_are_used_and_deploy_and_verify_skipped(
    make_server,
    workflow_env: dict[str, str],
    fake_model: fm.FakeAnthropic,
    git_host: GitHttpServer,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    _commit_file(git_host.root / "acme" / "calc.git", WORKFLOW, tmp_path)
    empty = tmp_path / "no-projects"  # calc comes from the forge, through the service's mirror
    empty.mkdir()
    server = make_server(**{**workflow_env, "PROJECTS_DIR": str(empty)}, WORKSPACE_CLEANUP="never")
    marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [[commit("calc.py", "def add(a, b): return a + b", "Add"), outcome({"summary": "add"})]],
            REVIEWER: [[APPROVE]],
        }
    )
    task = _wait_task(server, _queue(server, f"Write calc.add. {marker}"))
    assert task["status"] == "completed", (task["error"], [e["type"] for e in task["events"]])
    assert [e["type"] for e in task["events"] if e["type"] != "agent.finished"] == [
        "task.assigned",
        "task.plan.created",
        "pr.created",
        "pr.checks.passed",
        "pr.ready",
        "pr.merged",
        "deploy.completed",
    ]
    assert [a["agent_type"] for a in task["agents"]] == ["starter", "coding", "reviewer"]
    starter, coding, reviewer = task["agents"]
    assert (coding["model"], coding["max_turns"], coding["budget"]["usd"]) == (REPO_MODEL, 7, 3.5)
    assert starter["model"] != REPO_MODEL and reviewer["model"] != REPO_MODEL

    name = marker[len("[[scenario:") : -2]
    sent = fake_model.requests_for(f"{name}.{CODING}.0")
    assert {r["model"] for r in sent} == {REPO_MODEL}
    said = json.dumps(sent[0]["messages"])
    assert "by its own workflow file" in said and f"Task {task['id']}: Add calc on branch task/" in said
    assert "Costs $0 to read" in said
    assert "You are the coding agent of an automated software team" not in said  # not the built-in one
    assert REPO_MODEL not in {r["model"] for r in fake_model.requests_for(f"{name}.{STARTER}.0")}


def test_a_broken_workflow_file_fails_the_task_with_its_line_and_spawns_nothing(
    make_server, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    project = Path(workflow_env["PROJECTS_DIR"]) / "calc"
    server = make_server(**workflow_env)
    server.client.post("/api/queue/settings", json={"key": "stop_on_failure", "value": False})
    marker = fake_model.roles({STARTER: [[PLAN]]})

    _commit_file(project, '[agents.coding]\nmodel = "m"\nmax_turns = = 3\n', tmp_path)
    bad_toml = _wait_task(server, _queue(server, f"One. {marker}"))
    assert bad_toml["status"] == "failed"
    assert bad_toml["error"].startswith(".orchestrator/workflow.toml: not valid TOML"), bad_toml["error"]
    assert "line 3" in bad_toml["error"]

    # a change on the default branch applies to the tasks that start after it
    _commit_file(
        project, '[agents.coding]\nmodel = "m"\n\n[stages]\nskip = []\nskipp = ["deployer"]\n', tmp_path
    )
    unknown = _wait_task(server, _queue(server, f"Two. {marker}"))
    assert unknown["status"] == "failed"
    assert unknown["error"] == ".orchestrator/workflow.toml, line 6, field stages.skipp: unknown field"

    for task in (bad_toml, unknown):
        assert task["agents"] == [], task["agents"]
    assert server.query("SELECT id FROM agents") == []
    assert fake_model.requests_for(marker) == []


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "workflow", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_workflow_check_gives_the_message_a_task_would_fail_with(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(WORKFLOW)
    ok = _check(good)
    assert (ok.returncode, ok.stdout.strip()) == (0, f"{good}: ok"), ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[agents.coding]\nmodel = "m"\n\n[stages]\nskip = []\nskipp = ["deployer"]\n')
    refused = _check(bad)
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"{bad}, line 6, field stages.skipp: unknown field"


def test_the_files_require_approval_adds_a_gate_for_its_repository(
    make_server,
    workflow_env: dict[str, str],
    fake_model: fm.FakeAnthropic,
    github: FakeGitHub,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    project = Path(workflow_env["PROJECTS_DIR"]) / "calc"
    _commit_file(project, 'require_approval = "merge"\n[stages]\nskip = ["deployer", "verifier"]\n', tmp_path)
    server = make_server(**workflow_env, REQUIRE_APPROVAL="none")
    marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [[commit("calc.py", "def add(a, b): return a + b", "Add"), outcome({"summary": "add"})]],
            REVIEWER: [[APPROVE]],
        }
    )
    task_id = _queue(server, f"Write calc.add. {marker}")
    deadline = time.monotonic() + 120
    while (task := server.client.get(f"/api/tasks/{task_id}").json())["waiting_for"] != "approval:merge":
        assert task["status"] not in ("completed", "failed"), (task["error"], server.log())
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    assert task["status"] == "awaiting_approval"
    assert not github.pull(github._repos["acme/calc"], 1).merged, "no merge before a person says so"
    assert server.client.post(f"/api/tasks/{task_id}/approve").status_code == 202
    task = _wait_task(server, task_id)
    assert task["status"] == "completed", task["error"]
    assert github.pull(github._repos["acme/calc"], 1).merged
