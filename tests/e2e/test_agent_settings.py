"""Settings every agent's run follows: the model and the turn limit it is given, where its run files go."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ServerFactory
from tests.support import fake_anthropic as fm


def test_claude_model_and_agent_max_turns_reach_the_cli(
    make_server: ServerFactory, fake_model: fm.FakeAnthropic
) -> None:
    server = make_server(CLAUDE_MODEL="claude-haiku-4-5", AGENT_MAX_TURNS="2")
    busy = [fm.tool("Bash", {"command": f"echo {i}", "description": "work"}) for i in range(10)]
    marker = fake_model.scenario(busy)
    agent = server.spawn(f"keep going {marker}")
    assert (agent["model"], agent["max_turns"]) == ("claude-haiku-4-5", 2), agent
    done = server.wait_agent(agent["id"], timeout=90)
    assert done["status"] == "failed", done
    sent = fake_model.requests_for(marker)
    assert {r["model"] for r in sent} == {"claude-haiku-4-5"}
    assert len(sent) == 2, "the CLI stopped at AGENT_MAX_TURNS"


def test_runs_dir_holds_each_agents_run_files(
    make_server: ServerFactory, fake_model: fm.FakeAnthropic, tmp_path: Path
) -> None:
    runs = tmp_path / "elsewhere" / "runs"
    server = make_server(RUNS_DIR=str(runs))
    agent = server.spawn(f"hi {fake_model.scenario([fm.text('hello')])}")
    done = server.wait_agent(agent["id"], timeout=60)
    assert done["status"] == "completed", done
    assert '"result":"hello"' in (runs / agent["id"] / "stdout").read_text().replace(" ", "")
    assert not (server.data_dir / "runs" / agent["id"]).exists()
