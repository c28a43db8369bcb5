"""MCP servers and tools from a repository's workflow file, through the real server, the real `claude` CLI
in its bwrap sandbox, and a small stdio MCP server that the repository ships (tests/support)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from tests.e2e.test_workflow import APPROVE, CODING, PLAN, REVIEWER, STARTER, commit, outcome
from tests.e2e.test_workflow_file import _queue, _wait_task
from tests.support import fake_anthropic as fm
from tests.support.repos import git
from tests.support.server import Server

SERVER_SOURCE = Path(__file__).parents[1] / "support" / "mcp_marker_server.py"
WORKFLOW = """\
[agents.coding]
disallowed_tools = ["WebFetch"]

[agents.coding.mcp_servers.marker]
command = "python3"
args = ["tools/marker_mcp.py"]
env = { MARKER_SECRET = "${env:MCP_TEST_SECRET}", PLAIN = "not a secret" }

[agents.reviewer]
allowed_tools = ["Read", "Grep"]    # only these: the reviewer runs in the CLI's dontAsk mode

[stages]
skip = ["deployer", "verifier"]
"""


# the repository's own `.mcp.json`: no agent loads it (--strict-mcp-config), only what the service writes
SNEAKY = (
    '{"mcpServers": {"sneaky": {"type": "stdio", "command": "python3", "args": ["tools/marker_mcp.py"]}}}'
)


def _commit(project: Path, workflow: str) -> None:
    """The workflow file, the MCP server it names and a `.mcp.json`, committed at the project's HEAD."""
    (project / ".mcp.json").write_text(SNEAKY)
    (project / ".orchestrator").mkdir(exist_ok=True)
    (project / ".orchestrator" / "workflow.toml").write_text(workflow)
    (project / "tools").mkdir(exist_ok=True)
    (project / "tools" / "marker_mcp.py").write_text(SERVER_SOURCE.read_text())
    git("add", ".", cwd=project)
    git("commit", "--quiet", "-m", "workflow file and its MCP server", cwd=project)


def _said(server: Server, agent_id: str) -> str:
    rows = server.query(f"SELECT content FROM agent_logs WHERE agent_id = '{agent_id}' ORDER BY id")
    return "\n".join(str(r[0]) for r in rows)


def test_the_coding_agent_calls_the_repositorys_mcp_server_with_an_allowed_secret(
    make_server, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    secret = f"mcp-secret-{secrets.token_hex(12)}"
    _commit(Path(workflow_env["PROJECTS_DIR"]) / "calc", WORKFLOW)
    server = make_server(
        **workflow_env,
        AGENT_SANDBOX="bwrap",
        MCP_ENV_ALLOWLIST="MCP_TEST_SECRET",
        MCP_TEST_SECRET=secret,
        WORKSPACE_CLEANUP="never",
    )
    marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [
                [
                    fm.tool("mcp__marker__mark", {"note": "from-the-model"}),
                    commit("calc.py", "def add(a, b): return a + b", "Add"),
                    outcome({"summary": "add"}),
                ]
            ],
            REVIEWER: [[fm.tool("Bash", {"command": "touch reviewer-wrote", "description": "t"}), APPROVE]],
        }
    )
    task = _wait_task(server, _queue(server, f"Write calc.add. {marker}"))
    assert task["status"] == "completed", (task["error"], [e["type"] for e in task["events"]])
    starter, coding, reviewer = task["agents"]

    # the tool ran inside the coding agent's checkout, with the secret in its environment, and its
    # answer reached the model in the next request
    name = marker[len("[[scenario:") : -2]
    sent = fake_model.requests_for(f"{name}.{CODING}.0")
    answer = str(sent[1]["messages"][-1]["content"])
    assert f"marked from-the-model; secret {secret}; cwd {coding['workspace']}" in answer, answer

    # ... and nowhere in what the service stored: the log lines say it redacted
    said = _said(server, coding["id"])
    assert "marked from-the-model; secret [REDACTED]" in said, said[-2000:]
    for table, column in (("agent_logs", "content"), ("agents", "metadata"), ("agents", "prompt")):
        rows = server.query(f"SELECT {column} FROM {table}")
        assert not [r for r in rows if secret in str(r[0])], table
    assert secret not in server.log()
    # only the coding agent had the server, and neither the repository's `.mcp.json`; the file holding
    # the secret is gone from the run directory once the run ended
    assert '"mcp_servers":[{"name":"marker","status":"connected"' in said
    assert '"mcp_servers":[]' in _said(server, starter["id"])
    assert "sneaky" not in said + _said(server, starter["id"])
    # the reviewer's allow-list holds: Bash was refused, nothing waited for a person
    assert "running in don't ask mode" in _said(server, reviewer["id"])
    assert not (Path(reviewer["workspace"]) / "reviewer-wrote").exists()

    [(run_dir,)] = server.query(f"SELECT run_dir FROM agents WHERE id = '{coding['id']}'")
    assert (Path(run_dir) / "stdout").is_file()
    deadline = time.monotonic() + 10
    while (Path(run_dir) / "mcp.json").exists():
        assert time.monotonic() < deadline, "the MCP config outlived its run"
        time.sleep(0.1)


def test_a_reference_to_a_variable_not_allowed_fails_the_task_with_the_field(
    make_server, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    hostile = WORKFLOW.replace("${env:MCP_TEST_SECRET}", "${env:GITHUB_TOKEN}")
    _commit(Path(workflow_env["PROJECTS_DIR"]) / "calc", hostile)
    server = make_server(**workflow_env, MCP_ENV_ALLOWLIST="MCP_TEST_SECRET", MCP_TEST_SECRET="x" * 20)
    marker = fake_model.roles({STARTER: [[PLAN]]})
    task = _wait_task(server, _queue(server, f"Steal the token. {marker}"))
    assert task["status"] == "failed"
    assert task["error"] == (
        ".orchestrator/workflow.toml, line 7, field agents.coding.mcp_servers.marker.env.MARKER_SECRET: "
        "${env:GITHUB_TOKEN}: GITHUB_TOKEN is not in MCP_ENV_ALLOWLIST (the service fills only those)"
    )
    assert task["agents"] == [] and fake_model.requests_for(marker) == []
