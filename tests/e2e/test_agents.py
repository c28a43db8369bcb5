"""The agent manager through the real server, with the real `claude` CLI against the fake model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import TEST_PG, ServerFactory, fresh_postgres_database
from tests.support import fake_anthropic as fm
from tests.support.server import Server, agent_pids, stream_json_lines


def test_agent_writes_file_runs_bash_and_completes(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario(
        [
            fm.tools(
                [
                    ("Write", {"file_path": "{{cwd}}/hello.txt", "content": "hello from the fake model\n"}),
                    ("Bash", {"command": "git status --short && echo BASH_OK", "description": "status"}),
                ],
                text="Writing the file.",
            ),
            fm.text("Done: wrote hello.txt.", input_tokens=321, output_tokens=45),
        ]
    )
    agent = server.spawn(f"create hello.txt {marker}")
    assert agent["id"].startswith("coding-") and len(agent["id"]) == len("coding-") + 8
    assert agent["status"] in ("starting", "running")

    done = server.wait_agent(agent["id"])
    assert done["status"] == "completed", done
    assert done["exit_code"] == 0
    assert (Path(done["workspace"]) / "hello.txt").read_text() == "hello from the fake model\n"

    lines = list(stream_json_lines(server.logs(agent["id"])))
    kinds = [(o["type"], o.get("subtype")) for o in lines]
    assert ("system", "init") in kinds and kinds[-1] == ("result", "success")
    tool_uses = [
        b["name"]
        for o in lines
        if o["type"] == "assistant"
        for b in o["message"]["content"]
        if b["type"] == "tool_use"
    ]
    assert tool_uses == ["Write", "Bash"]
    results = [
        str(b.get("content"))
        for o in lines
        if o["type"] == "user"
        for b in o["message"]["content"]
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]
    assert any("BASH_OK" in r and "hello.txt" in r for r in results), results

    meta = done["metadata"]
    assert meta["result"] == "Done: wrote hello.txt."
    assert done["cost_usd"] is not None and done["cost_usd"] > 0
    assert done["input_tokens"] and done["output_tokens"]
    assert done["num_turns"] and done["num_turns"] >= 2
    assert done["session_id"] == meta["session_id"]
    assert done["log_lines"] == len(server.logs(agent["id"]))
    assert agent_pids(agent["id"]) == []


def test_api_error_fails_with_the_reason(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario([fm.error(500, "the model is broken")])
    agent = server.spawn(f"hi {marker}")
    done = server.wait_agent(agent["id"])
    assert done["status"] == "failed"
    assert "500" in done["error"] and "the model is broken" in done["error"]
    assert done["metadata"]["is_error"] is True


def test_run_without_result_line_fails(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "claude"
    script.write_text("#!/bin/sh\necho 'not json at all'\necho 'boom on stderr' >&2\nexit 3\n")
    script.chmod(0o755)
    server = make_server(CLAUDE_BIN=str(script))
    done = server.wait_agent(server.spawn("anything")["id"])
    assert done["status"] == "failed"
    assert done["exit_code"] == 3
    assert "without a result line" in done["error"] and "boom on stderr" in done["error"]


def test_hung_agent_times_out_and_leaves_no_process(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario([fm.stall(120)])
    agent = server.spawn(f"hang {marker}", timeout_seconds=2)
    done = server.wait_agent(agent["id"], timeout=30)
    assert done["status"] == "timeout"
    assert "timed out after 2 s" in done["error"]
    assert agent_pids(agent["id"]) == []


def test_kill_mid_run_ends_every_process_of_the_agent(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario(
        [
            fm.tool(
                "Bash",
                {
                    "command": "python3 -c 'import time; time.sleep(300)'",
                    "description": "long",
                    "timeout": 600000,
                },
            ),
            fm.text("never reached"),
        ]
    )
    agent = server.spawn(f"work long {marker}")
    deadline = time.monotonic() + 30
    while not any("time.sleep(300)" in _cmdline(pid) for pid in agent_pids(agent["id"])):
        assert time.monotonic() < deadline, "the Bash tool never started its command"
        time.sleep(0.1)

    response = server.client.post(f"/api/agents/{agent['id']}/kill")
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["end_reason"]) == ("killed", "killed")
    assert agent_pids(agent["id"]) == []
    again = server.client.post(f"/api/agents/{agent['id']}/kill")
    assert again.status_code == 409


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_retry_spawns_a_new_agent_with_the_same_work(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario([fm.error(500, times=1), fm.text("second time lucky")])
    first = server.wait_agent(server.spawn(f"try {marker}", timeout_seconds=120)["id"])
    assert first["status"] == "failed"

    response = server.client.post(f"/api/agents/{first['id']}/retry")
    assert response.status_code == 201, response.text
    second = response.json()
    assert second["id"] != first["id"]
    assert second["retry_of"] == first["id"]
    assert (second["agent_type"], second["prompt"], second["workspace"], second["timeout_seconds"]) == (
        first["agent_type"],
        first["prompt"],
        first["workspace"],
        first["timeout_seconds"],
    )
    done = server.wait_agent(second["id"])
    assert done["status"] == "completed"
    assert done["metadata"]["result"] == "second time lucky"


def test_twenty_agents_at_once(server: Server, fake_model: fm.FakeAnthropic) -> None:
    markers = [fake_model.scenario([fm.text(f"answer {i}")]) for i in range(20)]
    ids = [server.spawn(f"question {m}")["id"] for m in markers]
    assert len(set(ids)) == 20
    for i, agent_id in enumerate(ids):
        done = server.wait_agent(agent_id, timeout=120)
        assert done["status"] == "completed", done
        assert done["metadata"]["result"] == f"answer {i}"
    active = server.client.get("/api/agents/active").json()
    assert active == {"ids": []}
    stats = server.client.get("/api/agents/analytics").json()
    assert stats["by_status"] == {"completed": 20}
    assert stats["success_rate"] == 1.0
    assert stats["total_cost_usd"] > 0
    page = server.client.get("/api/agents", params={"limit": 7, "offset": 14}).json()
    assert page["total"] == 20 and len(page["items"]) == 6


def test_thousands_of_lines_a_second_are_all_stored_in_order(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "claude"
    script.write_text(
        "#!/bin/sh\nseq 1 50000\nseq 1 300 >&2\n"
        'echo \'{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"ok",'
        '"total_cost_usd":0.5,"usage":{"input_tokens":1,"output_tokens":2}}\'\n'
    )
    script.chmod(0o755)
    server = make_server(CLAUDE_BIN=str(script))
    done = server.wait_agent(server.spawn("print a lot")["id"])
    assert done["status"] == "completed", done
    logs = server.logs(done["id"])
    stdout = [ln["content"] for ln in logs if ln["stream"] == "stdout"]
    stderr = [ln["content"] for ln in logs if ln["stream"] == "stderr"]
    assert stdout[:-1] == [str(i) for i in range(1, 50001)]
    assert stderr == [str(i) for i in range(1, 301)]
    ids = [ln["id"] for ln in logs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert done["log_lines"] == 50301


LONG_AGENT = """#!/bin/sh
echo '{"type":"system","subtype":"init","session_id":"long"}'
sleep 300
"""


@pytest.mark.skipif(not TEST_PG, reason="needs the tests' PostgreSQL: scripts/test starts one")
def test_any_instance_kills_an_agent_another_instance_supervises(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    script = tmp_path / "claude"
    script.write_text(LONG_AGENT)
    script.chmod(0o755)
    env = {"DATABASE_URL": fresh_postgres_database(), "CLAUDE_BIN": str(script)}
    owner, other = (make_server(data_dir=tmp_path / f"i{n}", **env) for n in range(2))
    agent = owner.spawn("run long")
    deadline = time.monotonic() + 30
    while owner.client.get(f"/api/agents/{agent['id']}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert agent_pids(agent["id"]), "the agent's process runs"

    answer = other.client.post(f"/api/agents/{agent['id']}/kill")
    assert answer.status_code == 200, answer.text
    killed = answer.json()
    assert (killed["status"], killed["end_reason"]) == ("killed", "killed"), killed
    assert killed["instance_id"] == agent["instance_id"], "the owner ended it, nobody took it over"
    assert agent_pids(agent["id"]) == []
    again = other.client.post(f"/api/agents/{agent['id']}/kill")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]
