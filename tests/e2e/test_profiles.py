"""Agent profiles through the real server: the API, the Python client and the CLI set and read them, bad
input is refused naming its field, and a spawn or a repository's workflow file uses one by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.client import Client, InvalidRequest, NotFound
from tests.e2e.test_cli import cli, ok_json
from tests.e2e.test_workflow import APPROVE, CODING, PLAN, REVIEWER, STARTER, commit, outcome
from tests.e2e.test_workflow_file import _queue, _wait_task
from tests.e2e.test_workflow_mcp import _commit, _said
from tests.support import fake_anthropic as fm
from tests.support.server import Server

PROFILE_MODEL = "claude-profile-model-3"
REPO_WORKFLOW = """\
[agents.coding]
profile = "repo-coder"
max_turns = 9

[stages]
skip = ["deployer", "verifier"]
"""


def _client(server: Server) -> Client:
    return Client(server.url, token=server.token)


def test_profiles_are_set_read_replaced_and_deleted(server: Server, tmp_path: Path) -> None:
    with _client(server) as client:
        made = client.set_profile(
            "careful-coder", "coding", model=PROFILE_MODEL, budget_usd=1.5, disallowed_tools=["WebFetch"]
        )
        assert (made.name, made.agent_type, made.settings) == (
            "careful-coder",
            "coding",
            {"model": PROFILE_MODEL, "budget_usd": 1.5, "disallowed_tools": ["WebFetch"]},
        )
        created = server.client.put("/api/profiles/other", json={"agent_type": "reviewer", "model": "m"})
        assert created.status_code == 201
        replaced = server.client.put("/api/profiles/other", json={"agent_type": "reviewer", "max_turns": 3})
        assert replaced.status_code == 200 and replaced.json()["settings"] == {"max_turns": 3}
        assert [p.name for p in client.list_profiles()] == ["careful-coder", "other"]
        assert client.get_profile("other").created_at == created.json()["created_at"]
        client.delete_profile("other")
        with pytest.raises(NotFound):
            client.get_profile("other")
        with pytest.raises(NotFound):
            client.delete_profile("other")

    # the CLI: a TOML file of the same keys as [agents.<type>] in a workflow file
    spec = tmp_path / "reviewer.toml"
    spec.write_text(
        'agent_type = "reviewer"\nallowed_tools = ["Read", "Grep"]\npermission_mode = "dontAsk"\n'
    )
    done = cli("profiles", "set", "read-only-reviewer", str(spec), url=server)
    assert done.returncode == 0, done.stderr
    listed = ok_json("profiles", "list", url=server)
    assert [(p["name"], p["agent_type"]) for p in listed] == [
        ("careful-coder", "coding"),
        ("read-only-reviewer", "reviewer"),
    ]
    shown = json.loads(cli("profiles", "show", "read-only-reviewer", url=server).stdout)
    assert shown["settings"] == {"allowed_tools": ["Read", "Grep"], "permission_mode": "dontAsk"}
    assert cli("profiles", "delete", "read-only-reviewer", url=server).returncode == 0
    assert cli("profiles", "show", "read-only-reviewer", url=server).returncode != 0


BAD = [
    ("p", {"model": "m"}, "agent_type"),
    ("p", {"agent_type": "coding", "modle": "m"}, "modle"),
    ("p", {"agent_type": "coding", "allowed_tools": ["--mcp-config"]}, "allowed_tools"),
    ("p", {"agent_type": "coding", "profile": "q"}, "profile"),
    ("p", {"agent_type": "coding", "budget_usd": -1}, "budget_usd"),
    ("-p", {"agent_type": "coding"}, "name"),
    (
        "p",
        {
            "agent_type": "coding",
            "mcp_servers": {"gh": {"command": "x", "env": {"T": "${env:GITHUB_TOKEN}"}}},
        },
        "mcp_servers.gh.env.T",
    ),
]


def test_bad_profiles_are_refused_naming_the_field(server: Server) -> None:
    for name, body, field in BAD:
        answer = server.client.put(f"/api/profiles/{name}", json=body)
        assert 400 <= answer.status_code < 500, (name, body, answer.text)
        assert field in answer.text, answer.text
    assert server.client.get("/api/profiles").json() == []


def test_a_spawn_uses_a_profile_and_what_it_gives_itself_wins(
    server: Server, fake_model: fm.FakeAnthropic
) -> None:
    with _client(server) as client:
        client.set_profile("careful-coder", "coding", model=PROFILE_MODEL, budget_usd=1.5, max_turns=4)
        marker = fake_model.scenario([fm.text("done")], repeat_last=True)
        agent = client.spawn_agent("coding", f"Say done. {marker}", profile="careful-coder")
        assert agent.budget is not None
        assert (agent.model, agent.max_turns, agent.budget.usd) == (PROFILE_MODEL, 4, 1.5)
        own = client.spawn_agent(
            "coding", f"Say done. {marker}", profile="careful-coder", model="claude-own-1"
        )
        assert own.model == "claude-own-1"
        with pytest.raises(
            InvalidRequest,
            match=r"profile: profile 'careful-coder' is over the coding agent type, not reviewer",
        ):
            client.spawn_agent("reviewer", f"x {marker}", profile="careful-coder")
        with pytest.raises(InvalidRequest, match="profile: no profile 'nope'"):
            client.spawn_agent("coding", f"x {marker}", profile="nope")
    assert server.wait_agent(agent.id)["status"] == "completed"
    server.wait_agent(own.id)
    assert {r["model"] for r in fake_model.requests_for(marker)} >= {PROFILE_MODEL}


def test_a_workflow_file_names_a_profile_for_its_coding_agent(
    make_server, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    project = Path(workflow_env["PROJECTS_DIR"]) / "calc"
    _commit(project, REPO_WORKFLOW)
    server = make_server(**workflow_env)
    server.client.post("/api/queue/settings", json={"key": "stop_on_failure", "value": False})
    marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [[commit("calc.py", "def add(a, b): return a + b", "Add"), outcome({"summary": "add"})]],
            REVIEWER: [[APPROVE]],
        }
    )
    # no such profile yet: the task fails at its first step, naming the line and the field
    missing = _wait_task(server, _queue(server, f"One. {marker}"))
    assert missing["status"] == "failed"
    assert (
        missing["error"]
        == ".orchestrator/workflow.toml, line 2, field agents.coding.profile: no profile 'repo-coder'"
    )

    with _client(server) as client:
        client.set_profile(
            "repo-coder", "coding", model=PROFILE_MODEL, max_turns=20, disallowed_tools=["WebFetch"]
        )
    task = _wait_task(server, _queue(server, f"Two. {marker}"))
    assert task["status"] == "completed", task["error"]
    coding = next(a for a in task["agents"] if a["agent_type"] == "coding")
    assert (coding["model"], coding["max_turns"]) == (PROFILE_MODEL, 9)  # the file's own key wins
    assert "WebFetch" not in _said(server, coding["id"]).split('"tools":[', 1)[1].split("]", 1)[0]
