"""An agent's tools, permission mode and MCP servers: checked from a hostile workflow file, turned into
the CLI's options, its `--mcp-config` with secrets only by allowed reference, and kept for a retry."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.agents.command import ClaudeInvocation, build_argv
from orchestrator.agents.retry import retry_request
from orchestrator.agents.supervision import kept_metadata
from orchestrator.domain import agent_tools as at
from orchestrator.domain import workflow_file as wf
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.outcome import Ending, judge_run
from orchestrator.domain.profiles import Profile
from orchestrator.domain.stream_json import RunSummary
from orchestrator.domain.types import AgentType
from orchestrator.runtimes.base import MCP_CONFIG_FILE, Limits, RunSpec
from orchestrator.runtimes.docker import container_config
from orchestrator.runtimes.ownership import AgentUser
from orchestrator.runtimes.sandbox import Visibility, bwrap_argv
from orchestrator.settings import Settings

FILE = """\
[agents.coding]
allowed_tools = ["Read", "Edit", "Bash(git *)", "mcp__notes__*"]
disallowed_tools = ["WebFetch"]

[agents.coding.mcp_servers.notes]
command = "python3"
args = ["tools/notes_server.py", "--stdio"]

[agents.coding.mcp_servers.notes.env]
NOTES_TOKEN = "${env:NOTES_TOKEN}"
NOTES_HEADER = "Bearer ${env:NOTES_TOKEN} for $HOME"

[agents.reviewer]
permission_mode = "acceptEdits"
"""


def _refused(text: str) -> str:
    with pytest.raises(wf.WorkflowFileError) as caught:
        wf.parse(text)
    return str(caught.value)


def test_a_file_shapes_tools_and_mcp_servers_per_agent_type() -> None:
    workflow = wf.parse(FILE)
    coding = workflow.agent(AgentType.CODING).tools()
    assert coding.allowed_tools == ["Read", "Edit", "Bash(git *)", "mcp__notes__*"]
    assert coding.disallowed_tools == ["WebFetch"]
    assert coding.mode == "dontAsk"  # an allow-list means only those: not bypassPermissions
    assert coding.mcp_servers["notes"].args == ["tools/notes_server.py", "--stdio"]
    assert workflow.agent(AgentType.REVIEWER).tools().mode == "acceptEdits"
    assert workflow.agent(AgentType.STARTER).tools() == at.NO_TOOLS
    assert at.NO_TOOLS.mode == at.BYPASS


@pytest.mark.parametrize(
    ("line", "field", "said"),
    [
        ('allowed_tools = ["--mcp-config"]', "agents.coding.allowed_tools.0", "no '-'"),
        ('disallowed_tools = [" Bash"]', "agents.coding.disallowed_tools.0", "no space"),
        ('allowed_tools = ["Bash(rm\\n-rf)"]', "agents.coding.allowed_tools.0", "printable"),
        (f"allowed_tools = {json.dumps(['Read'] * 65)}", "agents.coding.allowed_tools", "at most 64"),
        (f'allowed_tools = ["{"x" * 257}"]', "agents.coding.allowed_tools.0", "at most 256"),
        ('permission_mode = "bypass"', "agents.coding.permission_mode", "bypassPermissions"),
        ("mcp_servers.'bad name'.command = 'x'", "agents.coding.mcp_servers.bad name.[key]", "pattern"),
        ("mcp_servers.s.args = ['a']", "agents.coding.mcp_servers.s.command", "Field required"),
        ("mcp_servers.s = {command = 'x', url = 'http://a'}", "agents.coding.mcp_servers.s.url", "unknown"),
        ("mcp_servers.s = {command = '${HOME}/x'}", "agents.coding.mcp_servers.s.command", "not expanded"),
        ("mcp_servers.s = {command = 'x', args = ['${env:A}']}", "agents.coding.mcp_servers.s.args.0", "env"),
        ("mcp_servers.s = {command = 'x', env = {T = '${GITHUB_TOKEN}'}}", "mcp_servers.s.env.T", "only"),
        ("mcp_servers.s = {command = 'x', env = {T = '${env:A-B}'}}", "mcp_servers.s.env.T", "only"),
        ("mcp_servers.s = {command = 'x', env = {T = '${env:A'}}", "mcp_servers.s.env.T", "only"),
        ("mcp_servers.s = {command = 'x', env = {'A B' = 'v'}}", "mcp_servers.s.env.A B.[key]", "pattern"),
    ],
)
def test_bad_tools_and_servers_name_their_line_and_field(line: str, field: str, said: str) -> None:
    message = _refused(f'[agents.coding]\nmodel = "m"\n{line}\n')
    # a key missing, or a table name that is wrong: the nearest table the file names
    at_line = 1 if field.endswith(("[key]", ".command")) and "= {" not in line else 3
    assert message.startswith(f".orchestrator/workflow.toml, line {at_line}, field "), message
    assert field in message and said in message, message


def test_mcp_config_fills_only_allowed_references_and_names_the_field() -> None:
    servers = wf.parse(FILE).agent(AgentType.CODING).mcp_servers or {}
    environ = {"NOTES_TOKEN": "tok-123456", "GITHUB_TOKEN": "ghp_x"}
    document = at.mcp_config(servers, environ, frozenset({"NOTES_TOKEN"}))
    assert document == {
        "mcpServers": {
            "notes": {
                "type": "stdio",
                "command": "python3",
                "args": ["tools/notes_server.py", "--stdio"],
                "env": {"NOTES_TOKEN": "tok-123456", "NOTES_HEADER": "Bearer tok-123456 for $HOME"},
            }
        }
    }
    with pytest.raises(at.EnvReferenceError) as refused:
        at.mcp_config(servers, environ, frozenset())
    assert refused.value.field == "mcp_servers.notes.env.NOTES_TOKEN"
    assert "NOTES_TOKEN is not in MCP_ENV_ALLOWLIST" in str(refused.value)
    with pytest.raises(at.EnvReferenceError, match="NOTES_TOKEN is not set"):
        at.mcp_config(servers, {}, frozenset({"NOTES_TOKEN"}))


def test_an_unfilled_reference_is_said_with_the_file_line_and_field() -> None:
    text = '[agents.coding.mcp_servers.gh]\ncommand = "x"\nenv = { T = "${env:GITHUB_TOKEN}" }\n'
    workflow = wf.parse(text)
    said = wf.unfilled_reference(workflow, text, frozenset({"NOTES_TOKEN"}))
    assert said == (
        ".orchestrator/workflow.toml, line 3, field agents.coding.mcp_servers.gh.env.T: "
        "${env:GITHUB_TOKEN}: GITHUB_TOKEN is not in MCP_ENV_ALLOWLIST (the service fills only those)"
    )
    assert wf.unfilled_reference(workflow, text, frozenset({"GITHUB_TOKEN"})) is None
    assert wf.has_mcp_servers(workflow) and not wf.has_mcp_servers(
        wf.parse(FILE.split("[agents.coding.mcp")[0])
    )


def test_the_allowlist_never_holds_the_services_secrets() -> None:
    settings = Settings(MCP_ENV_ALLOWLIST="NOTES_TOKEN, JIRA_KEY")  # type: ignore[call-arg]
    assert settings.mcp_env_names == frozenset({"NOTES_TOKEN", "JIRA_KEY"})
    assert Settings().mcp_env_names == frozenset()  # type: ignore[call-arg]
    for bad in ("GITHUB_TOKEN", "A,GH_TOKEN", "DATABASE_URL", "ORCHESTRATOR_API_TOKEN", "A-B"):
        with pytest.raises(ValidationError, match=r"never passed|not an environment"):
            Settings(MCP_ENV_ALLOWLIST=bad)  # type: ignore[call-arg]


def _pairs(argv: list[str]) -> list[tuple[str, str]]:
    return list(itertools.pairwise(argv))


def test_the_cli_gets_the_tools_mode_budget_and_only_the_services_mcp_config() -> None:
    plain = build_argv(ClaudeInvocation("claude", max_turns=5))
    assert "--dangerously-skip-permissions" in plain and "--strict-mcp-config" in plain
    assert not {"--permission-mode", "--allowedTools", "--mcp-config", "--max-budget-usd"} & set(plain)

    argv = build_argv(
        ClaudeInvocation(
            "claude",
            max_turns=5,
            max_budget_usd=2.5,
            allowed_tools=("Bash(git *)", "Edit"),
            disallowed_tools=("WebFetch",),
            permission_mode="dontAsk",
            mcp_config="/runs/a/mcp.json",
        )
    )
    pairs = _pairs(argv)
    assert "--dangerously-skip-permissions" not in argv
    assert ("--permission-mode", "dontAsk") in pairs and ("--permission-prompts", "none") in pairs
    assert ("--max-budget-usd", "2.500000") in pairs
    assert [b for a, b in pairs if a == "--allowedTools"] == ["Bash(git *)", "Edit"]
    assert [b for a, b in pairs if a == "--disallowedTools"] == ["WebFetch"]
    assert ("--mcp-config", "/runs/a/mcp.json") in pairs and "--strict-mcp-config" in argv
    tiny = build_argv(ClaudeInvocation("claude", max_turns=5, max_budget_usd=1e-9))
    assert ("--max-budget-usd", "0.000001") in _pairs(tiny)  # never 0, which the CLI would not take
    with pytest.raises(ValueError, match="read as an option"):
        build_argv(ClaudeInvocation("claude", max_turns=5, disallowed_tools=("--mcp-config",)))


def test_the_clis_own_budget_stop_ends_the_agent_as_budget_exceeded() -> None:
    summary = RunSummary()
    summary.feed(
        {
            "type": "result",
            "subtype": "error_max_budget_usd",
            "is_error": True,
            "errors": ["Reached maximum budget ($0.0001)"],
        }
    )
    verdict = judge_run(1, summary, Ending())
    assert verdict.reason is EndReason.BUDGET_EXCEEDED
    assert verdict.error == "budget_exceeded: Reached maximum budget ($0.0001)"
    other = RunSummary()
    other.feed({"type": "result", "subtype": "error_during_execution", "is_error": True})
    assert judge_run(1, other, Ending()).reason is EndReason.ERROR


def test_a_retry_keeps_the_tools_and_servers_by_reference() -> None:
    tools = wf.parse(FILE).agent(AgentType.CODING).tools()
    metadata = kept_metadata(tools)
    assert "${env:NOTES_TOKEN}" in json.dumps(metadata)  # the reference, never the value
    row = {
        "id": "coding-0000000a",
        "status": "failed",
        "error": "x",
        "agent_type": "coding",
        "prompt": "p",
        "session_id": None,
        "metadata": {**metadata, "cost_usd": 0.1},
        "config_dir": "/c",
        "budget": None,
        "task_id": "task-1",
        "repo": "calc",
        "model": "m",
        "timeout_seconds": 60.0,
        "max_turns": 5,
        "workspace": "/ws",
    }
    assert retry_request(row, resume=False).tools == tools
    assert retry_request({**row, "metadata": {}}, resume=False).tools is None
    assert kept_metadata(None) == kept_metadata(at.NO_TOOLS) == {}


def _spec(mcp: str | None) -> RunSpec:
    run_dir = Path("/srv/orch/runs/coding-0123abcd")
    return RunSpec(
        agent_id="coding-0123abcd",
        argv=["/opt/claude", "-p"],
        env={"HOME": str(run_dir / "home"), "CLAUDE_CONFIG_DIR": str(run_dir / "claude-config")},
        cwd=Path("/srv/orch/workspaces/coding-0123abcd"),
        run_dir=run_dir,
        limits=Limits(wall_seconds=60),
        mcp_config=mcp,
    )


def test_the_mcp_config_is_the_one_run_file_the_agent_reads_and_only_reads() -> None:
    spec = _spec('{"mcpServers": {}}')
    config_file = str(spec.run_dir / MCP_CONFIG_FILE)
    hidden = Visibility(hidden_dirs=(Path("/srv/orch"),), readable=(Path("/opt/claude"), Path(config_file)))
    argv = bwrap_argv("/usr/bin/bwrap", spec, visibility=hidden)
    assert ("--ro-bind", config_file) in _pairs(argv) and ("--bind", config_file) not in _pairs(argv)
    assert argv.index("/srv/orch") < argv.index(config_file)  # bound back inside the masked data dir
    docker = container_config(
        spec, Limits(60), image="i", network_mode="none", user=AgentUser(1000, 1000), claude_bin="claude"
    )
    assert docker["volumes"][config_file] == {"bind": config_file, "mode": "ro"}
    without = container_config(
        dataclasses.replace(spec, mcp_config=None),
        Limits(60),
        image="i",
        network_mode="none",
        user=AgentUser(1000, 1000),
        claude_bin="claude",
    )
    assert config_file not in without["volumes"]


def test_a_profile_lies_under_the_files_own_keys() -> None:
    profile = Profile.model_validate(
        {"agent_type": "coding", "model": "m1", "budget_usd": 2, "disallowed_tools": ["WebFetch"]}
    )
    assert profile.settings().model_dump(exclude_none=True) == {
        "model": "m1",
        "budget_usd": 2.0,
        "disallowed_tools": ["WebFetch"],
    }
    own = wf.parse('[agents.coding]\nprofile = "p"\nmodel = "m2"\n').agent(AgentType.CODING)
    merged = own.over(profile.settings())
    assert (merged.model, merged.budget_usd, merged.disallowed_tools) == ("m2", 2.0, ["WebFetch"])
    assert merged.within(100, 1.0).budget_usd == 1.0  # the operator's limits still bound it
    with pytest.raises(ValidationError, match="does not name another profile"):
        Profile.model_validate({"agent_type": "coding", "profile": "q"})
    with pytest.raises(ValidationError):
        Profile.model_validate({"model": "m"})  # no base agent type
    assert "line 2, field agents.coding.profile" in _refused('[agents.coding]\nprofile = "-x"\n')


def test_the_filled_mcp_config_never_shows_in_a_runs_repr() -> None:
    assert "tok-secret-123456" not in repr(_spec('{"env": {"T": "tok-secret-123456"}}'))


def test_the_webhook_secret_is_the_services_own() -> None:
    from orchestrator.agents.command import never_passed

    assert never_passed("GITHUB_WEBHOOK_SECRET") and never_passed("GITHUB_TOKEN")
    assert not never_passed("NOTES_TOKEN")
