"""The event-driven workflow through the real server, real `claude` agents and real git; GitHub is the
fake REST server for pull requests and a real git server on loopback (`git http-backend`) for pushes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import fake_anthropic as fm
from tests.support.fake_github import FakeGitHub
from tests.support.git_http import GitHttpServer
from tests.support.receiver import Receiver
from tests.support.repos import git
from tests.support.server import RETRYING_CLI, Server, write_db

STARTER = "You are the starter agent"
CODING = "You are the coding agent"
REVIEWER = "You are the reviewer agent"
DEPLOYER = "You are the deployer agent"
VERIFIER = "You are the verifier agent"
AUDITOR = "You are the auditor agent"


def outcome(data: dict[str, Any], prose: str = "Here is my outcome.") -> fm.Step:
    return fm.text(f"{prose}\n```json\n{json.dumps(data)}\n```")


def commit(path: str, content: str, message: str) -> fm.Step:
    write = f"printf '%s\\n' '{content}' > {path}"
    command = f"{write} && git add {path} && git commit -qm '{message}' && echo COMMITTED"
    return fm.tool("Bash", {"command": command, "description": "commit"})


PLAN = outcome(
    {"summary": "Add calc.add with a test", "steps": ["write calc.py", "test it"], "files": ["calc.py"]}
)
APPROVE = outcome({"verdict": "approve", "comments": []})
DEPLOYED = outcome({"deployed": True, "details": "nothing to deploy: a library"})


@pytest.fixture
def workflow_server(make_server, workflow_env: dict[str, str]) -> Server:  # type: ignore[no-untyped-def]
    return make_server(
        **workflow_env, WORKSPACE_CLEANUP="never", MAX_REVIEW_ROUNDS="2", WEBHOOK_ALLOW_HOSTS="127.0.0.1"
    )


def _queue_task(server: Server, description: str, title: str = "Add calc") -> str:
    task = server.client.post("/api/tasks", json={"title": title, "description": description, "repo": "calc"})
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


def _wait_agent_of_type(server: Server, task_id: str, agent_type: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not any(
        a["agent_type"] == agent_type for a in server.client.get(f"/api/tasks/{task_id}").json()["agents"]
    ):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


def _chain(task: dict[str, Any]) -> list[str]:
    return [e["type"] for e in task["events"] if e["type"] != "agent.finished"]


def test_full_loop_plan_code_review_fixup_merge_deploy_verify(
    workflow_server: Server, fake_model: fm.FakeAnthropic, github: FakeGitHub, git_host: GitHttpServer
) -> None:
    marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [
                [
                    commit("calc.py", "def add(a, b): return a + b", "Add calc.add"),
                    outcome({"summary": "added add"}),
                ],
                [
                    commit("test_calc.py", 'assert __import__("calc").add(1, 2) == 3', "Test add"),
                    outcome({"summary": "added the test"}),
                ],
            ],
            REVIEWER: [
                [outcome({"verdict": "changes_requested", "comments": ["add a test for add()"]})],
                [APPROVE],
            ],
            DEPLOYER: [[DEPLOYED]],
            VERIFIER: [[outcome({"passed": True, "evidence": ["import calc works"]})]],
        }
    )
    server = workflow_server
    with Receiver(secret="webhook-signing-secret") as receiver:
        hook = server.client.post(
            "/api/webhooks",
            json={"url": receiver.url, "event_types": ["pr.opened"], "secret": "webhook-signing-secret"},
        )
        assert hook.status_code == 201, hook.text
        task_id = _queue_task(server, f"Write calc.add. {marker}")
        task = _wait_task(server, task_id)
        assert task["status"] == "completed", (task["error"], _chain(task))
        deadline = time.monotonic() + 30
        while not receiver.received:
            assert time.monotonic() < deadline, "no pr.opened delivery"
            time.sleep(0.1)
        time.sleep(0.5)  # a second pr.opened (for the fixup's push) would have come with the first
    [opened] = receiver.received
    assert opened["verified"] and opened["json"]["type"] == "pr.opened", opened
    assert (opened["json"]["data"]["task_id"], opened["json"]["data"]["pr_number"]) == (task_id, 1), opened

    assert _chain(task) == [
        "task.assigned",
        "task.plan.created",
        "pr.created",
        "pr.checks.passed",
        "pr.changes.requested",
        "pr.updated",
        "pr.checks.passed",
        "pr.ready",
        "pr.merged",
        "deploy.completed",
        "verify.passed",
    ]
    assert all(e["status"] == "processed" for e in task["events"])
    assert [(a["agent_type"], a["status"]) for a in task["agents"]] == [
        ("starter", "completed"),
        ("coding", "completed"),
        ("reviewer", "completed"),
        ("coding", "completed"),
        ("reviewer", "completed"),
        ("deployer", "completed"),
        ("verifier", "completed"),
    ]
    assert task["execution_plan"]["summary"] == "Add calc.add with a test"
    assert task["branch"].startswith(f"task/{task_id}-add-calc")
    assert task["pr_number"] == 1
    assert [q["status"] for q in task["queue"]] == ["completed"]

    pushed = git_host.root / "acme" / "calc.git"
    log = git("log", "--format=%s", f"main..{task['branch']}", cwd=pushed)
    assert log.splitlines() == ["Test add", "Add calc.add"]
    pushes = [s for s in git_host.seen if s.method == "POST" and s.path.endswith("/git-receive-pack")]
    assert len(pushes) == 2
    assert all(s.authorization == git_host.expected_authorization for s in pushes)
    assert {s.path for s in git_host.seen} <= {
        "/acme/calc.git/info/refs?service=git-receive-pack",
        "/acme/calc.git/git-receive-pack",
    }
    pull = github.pull(github._repos["acme/calc"], 1)
    assert (pull.head_ref, pull.merged, pull.merge_method) == (task["branch"], True, "squash")

    fixup = fake_model.requests_for(f"{marker[len('[[scenario:') : -2]}.{CODING}.1")
    assert "add a test for add()" in json.dumps(fixup[0]["messages"])
    assert {a["workspace"] for a in task["agents"]} == {task["agents"][0]["workspace"]}
    _assert_no_token(server, github.token)


def _assert_no_token(server: Server, token: str) -> None:
    for table in ("agents", "agent_logs", "events", "tasks", "service_logs"):
        for row in server.query(f"SELECT * FROM {table}"):
            assert token not in json.dumps(row, default=str), table
    assert token not in server.log()
    for path in ("/api/agents", "/api/events", "/api/tasks", "/api/github/status"):
        assert token not in server.client.get(path).text


def test_verify_failed_creates_a_linked_bug_task(
    workflow_server: Server, fake_model: fm.FakeAnthropic
) -> None:
    marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [[commit("calc.py", "x = 1", "Add"), outcome({"summary": "s"})]],
            REVIEWER: [[APPROVE]],
            DEPLOYER: [[DEPLOYED]],
            VERIFIER: [[outcome({"passed": False, "evidence": ["import calc fails"]})]],
        }
    )
    task_id = _queue_task(workflow_server, f"Break it. {marker}")
    task = _wait_task(workflow_server, task_id)
    assert task["status"] == "failed"
    assert "bug task" in task["error"]
    bugs = [
        t for t in workflow_server.client.get("/api/tasks").json()["items"] if t["parent_task_id"] == task_id
    ]
    assert len(bugs) == 1
    assert "import calc fails" in bugs[0]["description"]
    assert bugs[0]["status"] == "pending"


def test_review_rounds_are_capped(workflow_server: Server, fake_model: fm.FakeAnthropic) -> None:
    change = outcome({"verdict": "changes_requested", "comments": ["again"]})
    code = [commit("calc.py", "x = 1", "Try"), outcome({"summary": "s"})]
    marker = fake_model.roles(
        {STARTER: [[PLAN]], CODING: [code, code, code], REVIEWER: [[change], [change], [change]]}
    )
    task = _wait_task(workflow_server, _queue_task(workflow_server, f"Never good. {marker}"))
    assert task["status"] == "failed"
    assert "review rounds cap" in task["error"]
    assert [a["agent_type"] for a in task["agents"]].count("reviewer") == 3
    assert (
        workflow_server.client.get("/api/queue")
        .json()["pause_reason"]
        .startswith(f"task {task['id']} failed")
    )


def test_agent_without_an_outcome_fails_the_task_with_the_reason(
    workflow_server: Server, fake_model: fm.FakeAnthropic
) -> None:
    marker = fake_model.roles({STARTER: [[fm.text("I looked around but will not say anything structured.")]]})
    task = _wait_task(workflow_server, _queue_task(workflow_server, f"Mute. {marker}"))
    assert task["status"] == "failed"
    assert "without a valid outcome" in task["error"]
    assert "no JSON block" in task["error"]


def test_audit_findings_become_tasks(workflow_server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.roles(
        {
            STARTER: [[outcome({"summary": "audit it", "audit": True})]],
            AUDITOR: [
                [outcome({"findings": [{"title": "No tests", "severity": "high"}, {"title": "No docs"}]})]
            ],
        }
    )
    task = _wait_task(workflow_server, _queue_task(workflow_server, f"Audit. {marker}"))
    assert task["status"] == "completed"
    assert _chain(task) == ["task.assigned", "audit.requested", "audit.completed"]
    children = [
        t
        for t in workflow_server.client.get("/api/tasks").json()["items"]
        if t["parent_task_id"] == task["id"]
    ]
    assert sorted(t["title"] for t in children) == ["No docs", "No tests"]


def test_service_killed_mid_workflow_resumes_without_skipping_or_repeating(
    make_server, workflow_env: dict[str, str], github: FakeGitHub, fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    env = {**workflow_env, **RETRYING_CLI}
    slow_review = fm.tool("Bash", {"command": "git log --oneline", "description": "look"}, delay=1.5)
    marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [[commit("calc.py", "x = 1", "Add"), outcome({"summary": "s"})]],
            REVIEWER: [[slow_review, APPROVE]],
            DEPLOYER: [[DEPLOYED]],
            VERIFIER: [[outcome({"passed": True, "evidence": ["ok"]})]],
        }
    )
    first = make_server(kill_agents_on_shutdown=False, **env)
    task_id = _queue_task(first, f"Resume me. {marker}")
    _wait_agent_of_type(first, task_id, "reviewer")
    first.crash()

    second = make_server(data_dir=first.data_dir, **env)
    task = _wait_task(second, task_id)
    assert task["status"] == "completed", task["error"]
    assert [a["agent_type"] for a in task["agents"]] == [
        "starter",
        "coding",
        "reviewer",
        "deployer",
        "verifier",
    ]
    assert _chain(task) == [
        "task.assigned",
        "task.plan.created",
        "pr.created",
        "pr.checks.passed",
        "pr.ready",
        "pr.merged",
        "deploy.completed",
        "verify.passed",
    ]
    assert len(github.requests_to("/merge", "PUT")) == 1


def test_a_fixup_refused_for_now_counts_as_one_review_round(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic
) -> None:
    """The fix-up's spawn is refused twice (the CLI gone for a moment) and retried: the round counts once,
    when its agent really starts, so the cap of 2 is not reached after one round."""
    from tests.conftest import claude_bin

    cli = tmp_path / "cli" / "claude"
    cli.parent.mkdir()
    cli.symlink_to(claude_bin())
    slow_review = fm.tool("Bash", {"command": "git log --oneline", "description": "look"}, delay=1.0)
    changes = outcome({"verdict": "changes_requested", "comments": ["add a test"]})
    marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [
                [commit("calc.py", "x = 1", "Add"), outcome({"summary": "s"})],
                [commit("test_calc.py", "import calc", "Test"), outcome({"summary": "tested"})],
            ],
            REVIEWER: [[slow_review, changes], [APPROVE]],
            DEPLOYER: [[DEPLOYED]],
            VERIFIER: [[outcome({"passed": True, "evidence": ["ok"]})]],
        }
    )
    server = make_server(**workflow_env, MAX_REVIEW_ROUNDS="2", CLAUDE_BIN=str(cli))
    task_id = _queue_task(server, f"Write calc. {marker}")
    _wait_agent_of_type(server, task_id, "reviewer")
    reviewer = next(
        a["id"]
        for a in server.client.get(f"/api/tasks/{task_id}").json()["agents"]
        if a["agent_type"] == "reviewer"
    )
    # its row comes before its process, and bwrap binds the CLI's path only as it starts: the CLI has
    # printed once it is running from its binary
    started = time.monotonic()
    while not server.logs(reviewer):
        assert time.monotonic() < started + 60, server.log()
        time.sleep(0.05)
    deadline = time.monotonic() + 90
    cli.unlink()  # the running reviewer keeps its binary; the fix-up cannot start
    while True:
        events = server.client.get("/api/events", params={"task_id": task_id}).json()["items"]
        refused = [e for e in events if e["type"] == "pr.changes.requested" and e["attempts"] >= 2]
        if refused:
            break
        assert time.monotonic() < deadline, events
        time.sleep(0.05)
    assert "not found" in (refused[0]["error"] or ""), refused[0]
    cli.symlink_to(claude_bin())

    task = _wait_task(server, task_id)
    assert task["status"] == "completed", (task["error"], _chain(task))
    assert task["review_rounds"] == 1


def test_a_step_cut_before_its_agent_started_runs_again_instead_of_failing_the_task(
    make_server, workflow_env: dict[str, str], github: FakeGitHub, fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [[commit("calc.py", "x = 1", "Add"), outcome({"summary": "s"})]],
            REVIEWER: [[APPROVE]],
            DEPLOYER: [[DEPLOYED]],
            VERIFIER: [[outcome({"passed": True, "evidence": ["ok"]})]],
        }
    )
    first = make_server(**workflow_env)
    first.client.post("/api/queue/settings", json={"key": "paused", "value": True})
    task_id = _queue_task(first, f"Cut me. {marker}")
    first.stop()
    # what a crash between the start of the task's first step and its agent's process leaves behind
    cut, at = "starter-0badc0de", "2026-01-01T00:00:00.000Z"
    write_db(
        first,
        f"UPDATE queue SET status = 'processing', agent_id = 'coding-0badc0de', instance_id = 'gone',"
        f" started_at = '{at}' WHERE task_id = '{task_id}'",
        f"UPDATE tasks SET status = 'in_progress' WHERE id = '{task_id}'",
        "INSERT INTO events (id, type, task_id, payload, status, created_at, attempts, instance_id,"
        f" spawned_agent_id, seq) VALUES ('{task_id}.assigned.cut', 'task.assigned', '{task_id}', '{{}}',"
        f" 'processing', '{at}', 1, 'gone', '{cut}', 1)",
        "INSERT INTO agents (id, task_id, status, agent_type, prompt, timeout_seconds, max_turns, runtime,"
        f" instance_id, created_at, updated_at) VALUES ('{cut}', '{task_id}', 'starting', 'starter', 'p',"
        f" 60, 5, 'host', 'gone', '{at}', '{at}')",
        "UPDATE queue_settings SET value = 'false' WHERE key = 'paused'",
    )

    second = make_server(data_dir=first.data_dir, **workflow_env)
    task = _wait_task(second, task_id)
    assert task["status"] == "completed", task["error"]
    starters = [a for a in task["agents"] if a["agent_type"] == "starter"]
    assert [(a["id"], a["end_reason"]) for a in starters if a["id"] == cut] == [(cut, "never_started")]
    assert [a["end_reason"] for a in starters if a["id"] != cut] == ["completed"]
    assert [a["agent_type"] for a in task["agents"] if a["id"] != cut] == [
        "starter",
        "coding",
        "reviewer",
        "deployer",
        "verifier",
    ]
    assert len(github.requests_to("/merge", "PUT")) == 1


def test_a_rate_limited_step_waits_and_resumes_its_session_instead_of_failing_the_task(
    make_server, workflow_env: dict[str, str], github: FakeGitHub, fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    marker = fake_model.roles(
        {
            STARTER: [[fm.error(429, "slow down", times=1), PLAN]],
            CODING: [[commit("calc.py", "x = 1", "Add"), outcome({"summary": "s"})]],
            REVIEWER: [[APPROVE]],
            DEPLOYER: [[DEPLOYED]],
            VERIFIER: [[outcome({"passed": True, "evidence": ["ok"]})]],
        }
    )
    server = make_server(**workflow_env, RATE_LIMIT_BACKOFF_SECONDS="1")
    task = _wait_task(server, _queue_task(server, f"Limited. {marker}"))
    assert task["status"] == "completed", task["error"]
    limited, resumed = (a for a in task["agents"] if a["agent_type"] == "starter")
    assert (limited["status"], limited["end_reason"]) == ("rate_limited", "rate_limited"), limited
    assert resumed["status"] == "completed" and resumed["resumed_session"] == limited["session_id"], resumed
    assert resumed["retry_of"] == limited["id"]
    assert [a["agent_type"] for a in task["agents"]][2:] == ["coding", "reviewer", "deployer", "verifier"]
    assert len(github.requests_to("/merge", "PUT")) == 1


def test_a_step_limited_again_and_again_fails_its_task_at_the_cap(
    make_server, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    marker = fake_model.roles({STARTER: [[fm.error(429, "slow down")]]})
    server = make_server(**workflow_env, RATE_LIMIT_BACKOFF_SECONDS="0.2", RATE_LIMIT_MAX_PER_TASK="2")
    task = _wait_task(server, _queue_task(server, f"Limited for ever. {marker}"))
    assert task["status"] == "failed", task
    assert "rate limited 2 times" in task["error"], task["error"]
    assert [a["status"] for a in task["agents"]] == ["rate_limited", "rate_limited"]


def test_an_event_that_keeps_failing_ends_failed_after_event_max_attempts(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic
) -> None:
    """The starter's spawn is refused every time (the CLI gone): the task.assigned event is tried
    EVENT_MAX_ATTEMPTS times, then it and its task end failed with the reason."""
    from tests.conftest import claude_bin

    cli = tmp_path / "cli" / "claude"
    cli.parent.mkdir()
    cli.symlink_to(claude_bin())
    marker = fake_model.roles({STARTER: [[PLAN]]})
    server = make_server(**workflow_env, EVENT_MAX_ATTEMPTS="2", CLAUDE_BIN=str(cli))
    cli.unlink()
    task_id = _queue_task(server, f"Never starts. {marker}")
    task = _wait_task(server, task_id, timeout=60)
    assert task["status"] == "failed"
    events = server.client.get("/api/events", params={"task_id": task_id}).json()["items"]
    [assigned] = [e for e in events if e["type"] == "task.assigned"]
    assert (assigned["status"], assigned["attempts"]) == ("failed", 2), assigned
    assert "not found" in (assigned["error"] or ""), assigned
    assert "task.assigned" in (task["error"] or ""), task["error"]
    assert task["agents"] == []


def test_workspace_cleanup_on_success_removes_a_completed_tasks_workspace_and_keeps_a_failed_ones(  # type: ignore[no-untyped-def]
    make_server, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic
) -> None:
    done_marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [[commit("calc.py", "x = 1", "Add"), outcome({"summary": "s"})]],
            REVIEWER: [[APPROVE]],
            DEPLOYER: [[DEPLOYED]],
            VERIFIER: [[outcome({"passed": True, "evidence": ["ok"]})]],
        }
    )
    # fails after its work was pushed, so only the policy (not unpushed work) keeps its workspace
    failed_marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [[commit("calc.py", "x = 2", "Add"), outcome({"summary": "s"})]],
            REVIEWER: [[fm.text("Nothing structured to say.")]],
        }
    )
    server = make_server(**workflow_env, WORKSPACE_CLEANUP="on_success")
    tasks_dir = server.data_dir / "workspaces" / "tasks"
    setting = {"key": "stop_on_failure", "value": False}
    assert server.client.post("/api/queue/settings", json=setting).status_code == 200

    failed = _wait_task(server, _queue_task(server, f"Mute. {failed_marker}", title="Mute"))
    assert failed["status"] == "failed"
    assert "reviewer agent" in failed["error"], failed["error"]
    assert (tasks_dir / failed["id"]).is_dir()
    assert f"workspace of task {failed['id']} kept" not in server.log()
    assert Path(failed["agents"][0]["workspace"]).is_dir()

    done = _wait_task(server, _queue_task(server, f"Write calc. {done_marker}"))
    assert done["status"] == "completed", (done["error"], _chain(done))
    workspace = Path(done["agents"][0]["workspace"])
    assert workspace.is_relative_to(tasks_dir / done["id"]), workspace
    assert not (tasks_dir / done["id"]).exists()
    assert not workspace.exists()
    assert (tasks_dir / failed["id"]).is_dir()
