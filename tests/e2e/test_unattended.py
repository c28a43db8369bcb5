"""Unattended runs: budgets, stalled and looping agents, resumed sessions."""

from __future__ import annotations

import json
import re
import time

from tests.support import fake_anthropic as fm
from tests.support.server import Server
from tests.support.sse import events


def _echo(i: int) -> fm.Step:
    return fm.tool("Bash", {"command": f"echo round-{i}", "description": "work"})


def test_turns_budget_stops_a_busy_agent(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario([_echo(i) for i in range(30)])
    agent = server.spawn(f"keep going {marker}", budget={"turns": 3})
    assert agent["budget"] == {"usd": None, "turns": 3, "wall_seconds": None}
    done = server.wait_agent(agent["id"], timeout=90)
    assert done["status"] == "failed"
    # the output is read in polls: a loaded machine can show the 4th and 5th turn in one read
    seen = re.match(r"budget_exceeded: (\d+) turns > 3", done["error"])
    assert seen and int(seen[1]) >= 4, done["error"]
    assert done["end_reason"] == "budget_exceeded"
    # stopped at the turn it was seen in: at most the request already on its way came after
    assert len(fake_model.requests_for(marker)) <= int(seen[1]) + 1


def test_cost_budget_stops_an_expensive_agent(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario([_echo(i) for i in range(30)])
    done = server.wait_agent(server.spawn(f"spend {marker}", budget={"usd": 0.003})["id"], timeout=90)
    assert done["status"] == "failed"
    assert done["error"].startswith("budget_exceeded: $")
    assert "> $0.0030" in done["error"]


def test_bad_budget_is_refused(server: Server) -> None:
    response = server.client.post(
        "/api/agents/spawn", json={"agent_type": "coding", "prompt": "x", "budget": {"usd": -1}}
    )
    assert response.status_code == 422
    assert "budget.usd" in response.json()["detail"]


def test_silent_agent_is_flagged_then_killed(make_server, fake_model: fm.FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    server = make_server(AGENT_STALL_SECONDS="1.5", AGENT_STALL_GRACE_SECONDS="1", AGENT_STALL_ACTION="kill")
    agent = server.spawn(f"think hard {fake_model.scenario([fm.stall(60)])}")
    flags = []
    with server.client.stream(
        "GET", f"/api/agents/{agent['id']}/logs", headers={"Accept": "text/event-stream"}, timeout=60
    ) as response:
        for event in events(response):
            if event.event == "flag":
                flags.append(event.data["flag"])
            if event.event == "end":
                break
    # flagged again if some output (a retry notice of the CLI) ended the silence in between
    assert flags and set(flags) == {"stalled"}
    done = server.agent(agent["id"])
    assert (done["status"], done["end_reason"]) == ("killed", "stalled")
    assert "stalled" in done["error"]
    assert {f["name"] for f in done["flags"]} == {"stalled"}
    # flagged when the silence passed its limit, not at a later look
    silent = re.fullmatch(r"no output for (\d+) s", done["flags"][0]["detail"])
    assert silent and int(silent[1]) < 5, done["flags"]


def test_looping_agent_is_flagged(make_server, fake_model: fm.FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    server = make_server(AGENT_LOOP_REPEATS="3")
    same = fm.tool("Bash", {"command": "echo again", "description": "again"})
    agent = server.spawn(f"loop {fake_model.scenario([same], repeat_last=True)}", max_turns=6)
    done = server.wait_agent(agent["id"], timeout=90)
    assert "looping" in [f["name"] for f in done["flags"]]
    # the supervisor reads output in batches, so it may see the streak past the threshold
    seen = re.fullmatch(r"the same tool call (\d+) times in a row", done["flags"][0]["detail"])
    assert seen and 3 <= int(seen[1]) <= 6


def test_retry_with_resume_continues_the_same_session(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario(
        [_echo(1), fm.error(500, "overloaded for now", times=1), fm.text("resumed fine")]
    )
    first = server.wait_agent(server.spawn(f"work {marker}")["id"], timeout=60)
    assert first["status"] == "failed"
    assert first["session_id"]

    response = server.client.post(f"/api/agents/{first['id']}/retry", json={"resume": True})
    assert response.status_code == 201, response.text
    second = response.json()
    assert second["resumed_session"] == first["session_id"]
    assert second["retry_of"] == first["id"]
    done = server.wait_agent(second["id"], timeout=60)
    assert done["status"] == "completed", done
    assert done["metadata"]["result"] == "resumed fine"
    assert done["session_id"] == first["session_id"]
    last = fake_model.requests_for(marker)[-1]
    assert "round-1" in json.dumps(last["messages"]), "the resumed run carries the earlier conversation"


def test_resume_without_a_session_is_refused(make_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "claude"
    script.write_text("#!/bin/sh\nexit 2\n")
    script.chmod(0o755)
    server = make_server(CLAUDE_BIN=str(script))
    agent = server.wait_agent(server.spawn("x")["id"])
    response = server.client.post(f"/api/agents/{agent['id']}/retry", json={"resume": True})
    assert response.status_code == 409
    assert "session" in response.json()["detail"]


def test_a_task_budget_is_one_purse_for_all_its_agents(server: Server, fake_model: fm.FakeAnthropic) -> None:
    created = server.client.post("/api/tasks", json={"id": "purse", "title": "t", "budget": {"turns": 6}})
    assert created.status_code == 201, created.text
    first = server.wait_agent(
        server.spawn(f"work {fake_model.scenario([_echo(0), _echo(1), fm.text('done')])}", task_id="purse")[
            "id"
        ],
        timeout=90,
    )
    assert first["status"] == "completed" and first["num_turns"] >= 2, first
    left = 6 - first["num_turns"]
    second = server.spawn(f"more {fake_model.scenario([fm.text('ok')])}", task_id="purse", budget={"usd": 5})
    # what the first agent left of the task's purse, with the agent's own budget where that is tighter
    assert second["budget"] == {"usd": 5.0, "turns": left, "wall_seconds": None}, second
    second = server.wait_agent(second["id"], timeout=90)
    spent = first["num_turns"] + second["num_turns"]
    tight = server.client.post("/api/tasks", json={"id": "spent", "title": "t", "budget": {"turns": 1}})
    assert tight.status_code == 201
    only = server.wait_agent(
        server.spawn(f"one {fake_model.scenario([fm.text('ok')])}", task_id="spent")["id"], timeout=90
    )
    assert only["num_turns"] >= 1 and spent >= 3
    refused = server.client.post(
        "/api/agents/spawn", json={"agent_type": "coding", "prompt": "again", "task_id": "spent"}
    )
    assert refused.status_code == 409, refused.text
    assert "task spent has spent its budget (turns)" in refused.json()["detail"]


def test_wall_time_budget_stops_a_slow_agent(server: Server, fake_model: fm.FakeAnthropic) -> None:
    marker = fake_model.scenario([fm.text("thinking it over", delay=30)])
    agent = server.spawn(f"take your time {marker}", budget={"wall_seconds": 2})
    assert agent["budget"] == {"usd": None, "turns": None, "wall_seconds": 2}
    done = server.wait_agent(agent["id"], timeout=30)
    assert done["status"] == "failed"
    assert done["end_reason"] == "budget_exceeded"
    assert done["error"].startswith("budget_exceeded: ")
    assert "s of wall time" in done["error"]
    # acted on when the budget ran out (a silent agent's supervisor wakes then), not at a later look
    elapsed = re.search(r"budget_exceeded: ([\d.]+) s > 2 s", done["error"])
    assert elapsed and float(elapsed[1]) < 5, done["error"]


def test_the_wall_time_setting_is_every_agents_default_budget(
    make_server, fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(BUDGET_WALL_SECONDS="2")
    marker = fake_model.scenario([fm.text("thinking it over", delay=30)])
    done = server.wait_agent(server.spawn(f"take your time {marker}")["id"], timeout=30)
    assert done["end_reason"] == "budget_exceeded"
    assert "> 2 s of wall time" in done["error"]


def test_kill_resume_resumes_a_stalled_agent_in_its_session(
    make_server, fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    # long enough that a slow start of the resumed CLI on a busy machine is not a stall too
    server = make_server(
        AGENT_STALL_SECONDS="5", AGENT_STALL_GRACE_SECONDS="1", AGENT_STALL_ACTION="kill_resume"
    )
    # repeat_last: the stalled answer may leave an assistant turn in the session the resumed run sends back
    marker = fake_model.scenario([_echo(1), fm.stall(60, times=1), fm.text("resumed fine")], repeat_last=True)
    stalled = server.wait_agent(server.spawn(f"think hard {marker}")["id"], timeout=60)
    assert (stalled["status"], stalled["end_reason"]) == ("killed", "stalled"), stalled
    assert stalled["session_id"]
    deadline = time.monotonic() + 30
    while not (resumed := server.query(f"SELECT id FROM agents WHERE retry_of = '{stalled['id']}'")):
        assert time.monotonic() < deadline, "no agent resumed the stalled one"
        time.sleep(0.1)
    done = server.wait_agent(resumed[0][0], timeout=60)
    assert done["resumed_session"] == stalled["session_id"]
    assert (done["status"], done["metadata"]["result"]) == ("completed", "resumed fine"), done
    assert "round-1" in json.dumps(fake_model.requests_for(marker)[-1]["messages"])
