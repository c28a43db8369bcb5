"""A stage's retry policy from the repository's `.orchestrator/workflow.toml` through the real server,
real `claude` agents against the fake model and real git: a coding run without a valid outcome runs
again and the task completes; a starter that twice ends without one fails the task after two runs."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.test_workflow import APPROVE, CODING, PLAN, REVIEWER, STARTER, commit, outcome
from tests.e2e.test_workflow_file import _commit_file, _queue, _wait_task
from tests.support import fake_anthropic as fm
from tests.support.git_http import GitHttpServer

WORKFLOW = """\
[stages]
skip = ["deployer", "verifier"]

[retry.coding]
attempts = 2
backoff_seconds = 0

[retry.starter]
attempts = 3
backoff_seconds = 0
"""


def test_a_stage_runs_again_by_its_policy_and_an_invalid_outcome_twice_ends_it(
    make_server,
    workflow_env: dict[str, str],
    fake_model: fm.FakeAnthropic,
    git_host: GitHttpServer,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    _commit_file(git_host.root / "acme" / "calc.git", WORKFLOW, tmp_path)
    empty = tmp_path / "no-projects"
    empty.mkdir()
    server = make_server(**{**workflow_env, "PROJECTS_DIR": str(empty)}, WORKSPACE_CLEANUP="never")
    server.client.post("/api/queue/settings", json={"key": "stop_on_failure", "value": False})
    shrug = fm.text("I looked around and have nothing to report.")
    retried = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [
                [shrug],
                [commit("calc.py", "def add(a, b): return a + b", "Add"), outcome({"summary": "add"})],
            ],
            REVIEWER: [[APPROVE]],
        }
    )
    task = _wait_task(server, _queue(server, f"Write calc.add. {retried}"))
    assert task["status"] == "completed", (task["error"], [e["type"] for e in task["events"]])
    assert [a["agent_type"] for a in task["agents"]] == ["starter", "coding", "coding", "reviewer"]
    first, second = task["agents"][1:3]
    assert first["status"] == "completed" and second["status"] == "completed"
    assert server.agent(second["id"])["resumed_session"] is None  # afresh: `resume` is off by default

    gives_up = fake_model.roles({STARTER: [[shrug], [shrug], [PLAN]]})
    failed = _wait_task(server, _queue(server, f"Plan calc.sub. {gives_up}"))
    assert failed["status"] == "failed"
    assert [a["agent_type"] for a in failed["agents"]] == ["starter", "starter"]  # not a third run
    assert "ended without a valid outcome" in failed["error"], failed["error"]


def test_a_retry_with_resume_continues_the_ended_runs_session(
    make_server, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    project = Path(workflow_env["PROJECTS_DIR"]) / "calc"
    _commit_file(project, "[retry.starter]\nattempts = 2\nbackoff_seconds = 1\nresume = true\n", tmp_path)
    server = make_server(**workflow_env)
    shrug = fm.text("Still thinking.")
    marker = fake_model.roles({STARTER: [[shrug], [PLAN]]})
    task_id = _queue(server, f"Plan calc.mul. {marker}")
    deadline = time.monotonic() + 120
    while len(starters := server.client.get(f"/api/tasks/{task_id}").json()["agents"]) < 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    first, second = (server.wait_agent(a["id"]) for a in starters[:2])
    assert first["session_id"] and second["resumed_session"] == first["session_id"]
    assert second["retry_of"] == first["id"]
    assert second["prompt"].startswith("Continue the work from where you stopped")
    assert second["status"] == "completed" and second["metadata"]["result"]
    _wait_task(server, task_id)


def test_a_refused_tool_and_the_tasks_cap_on_empty_runs_stop_retries(
    make_server,
    workflow_env: dict[str, str],
    fake_model: fm.FakeAnthropic,
    git_host: GitHttpServer,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    """A run the CLI refused a tool is not worth another (`permission_refused`, also in the default
    `no_retry_on`), and past `max_empty_runs` a failed step fails its task whatever its stage's attempts
    say (here invalid outcomes in a row are retried: `invalid_outcome_twice` is not listed)."""
    workflow = (
        '[agents.starter]\nallowed_tools = ["Read"]\n\n'
        '[retry.starter]\nattempts = 5\nbackoff_seconds = 0\nno_retry_on = ["permission_refused"]\n\n'
        "[retry]\nmax_empty_runs = 1\n"
    )
    _commit_file(git_host.root / "acme" / "calc.git", workflow, tmp_path)
    empty = tmp_path / "no-projects"
    empty.mkdir()
    server = make_server(**{**workflow_env, "PROJECTS_DIR": str(empty)})
    server.client.post("/api/queue/settings", json={"key": "stop_on_failure", "value": False})
    shrug = fm.text("I looked around and have nothing to report.")
    refused = fake_model.roles({STARTER: [[fm.tool("Bash", {"command": "echo hi > /tmp/x"}), shrug], [PLAN]]})
    task = _wait_task(server, _queue(server, f"Plan calc.div. {refused}"))
    assert task["status"] == "failed", task
    (starter,) = task["agents"]
    assert server.agent(starter["id"])["metadata"]["permission_denials"] >= 1

    shrugs = fake_model.roles({STARTER: [[shrug], [shrug], [shrug], [PLAN]]})
    capped = _wait_task(server, _queue(server, f"Plan calc.mod. {shrugs}"))
    assert capped["status"] == "failed", capped
    assert [a["agent_type"] for a in capped["agents"]] == ["starter", "starter"]  # one run again, not four
