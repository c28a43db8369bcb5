"""Proof that tests/support/fake_anthropic.py drives the real `claude` CLI headless."""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import claude_bin
from tests.support.fake_anthropic import FakeAnthropic, error, stall, text, tool, tools

RUN_TIMEOUT = 90.0


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def result(self) -> dict[str, Any]:
        results = [e for e in self.events if e.get("type") == "result"]
        assert len(results) == 1, (
            f"expected one result line, got {len(results)}:\n{self.stdout}\n{self.stderr}"
        )
        return results[0]

    def tool_results(self) -> list[dict[str, Any]]:
        return [
            block
            for event in self.events
            if event.get("type") == "user"
            for block in event["message"]["content"]
            if isinstance(block, dict) and block.get("type") == "tool_result"
        ]


@pytest.fixture(scope="session", name="claude_bin")
def claude_bin_fixture() -> str:
    return claude_bin()


@pytest.fixture(name="fake")
def fake_fixture(fake_model: FakeAnthropic) -> FakeAnthropic:
    return fake_model


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True, env={"PATH": "/usr/bin:/bin"})
    return ws


def _env(fake: FakeAnthropic, home: Path, max_retries: int) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": fake.base_url,
        "ANTHROPIC_API_KEY": "dummy",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "IS_SANDBOX": "1",
        "CLAUDE_CODE_MAX_RETRIES": str(max_retries),
    }


def _argv(claude_bin: str, prompt: str) -> list[str]:
    return [
        claude_bin,
        "-p",
        prompt,
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
        "--max-turns",
        "10",
    ]


def run_claude(
    claude_bin: str, fake: FakeAnthropic, prompt: str, cwd: Path, home: Path, *, max_retries: int = 0
) -> Run:
    proc = subprocess.run(
        _argv(claude_bin, prompt),
        cwd=cwd,
        env=_env(fake, home, max_retries),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def test_write_then_bash_then_final_text(
    claude_bin: str, fake: FakeAnthropic, workspace: Path, tmp_path: Path
) -> None:
    target = workspace / "hello.txt"
    marker = fake.scenario(
        [
            tool("Write", {"file_path": str(target), "content": "hello from fake\n"}, text="Writing."),
            tool("Bash", {"command": "git status --short && echo BASH_OK", "description": "status"}),
            text("All done."),
        ]
    )

    run = run_claude(claude_bin, fake, f"create hello.txt {marker}", workspace, tmp_path / "home")

    assert run.returncode == 0, run.stdout + run.stderr
    assert target.read_text() == "hello from fake\n"
    assert run.result["is_error"] is False
    assert run.result["result"] == "All done."
    bash_outputs = [r["content"] for r in run.tool_results() if "BASH_OK" in str(r["content"])]
    assert bash_outputs, run.stdout
    assert "?? hello.txt" in str(bash_outputs[0])

    requests = fake.requests_for(marker)
    assert len(requests) == 3
    assert all(r["stream"] is True for r in requests)
    second = requests[1]["messages"]
    assert [m["role"] for m in second if m["role"] != "system"][-2:] == ["assistant", "user"]
    tool_use = [b for b in second[-2]["content"] if b["type"] == "tool_use"]
    assert [b["name"] for b in tool_use] == ["Write"]
    result_block = second[-1]["content"][0]
    assert result_block["type"] == "tool_result"
    assert result_block["tool_use_id"] == tool_use[0]["id"]
    assert "File created successfully" in str(result_block["content"])
    third_results = [b for b in requests[2]["messages"][-1]["content"] if b.get("type") == "tool_result"]
    assert "BASH_OK" in str(third_results[0]["content"])


def test_parallel_tool_calls_in_one_reply(
    claude_bin: str, fake: FakeAnthropic, workspace: Path, tmp_path: Path
) -> None:
    marker = fake.scenario(
        [
            tools(
                [
                    ("Write", {"file_path": str(workspace / "a.txt"), "content": "A\n"}),
                    ("Bash", {"command": "echo TWO_TOOLS_OK", "description": "echo"}),
                ],
                text="Two tools.",
            ),
            text("Both ran."),
        ]
    )

    run = run_claude(claude_bin, fake, f"two tools {marker}", workspace, tmp_path / "home")

    assert run.returncode == 0, run.stdout + run.stderr
    assert (workspace / "a.txt").read_text() == "A\n"
    assert run.result["result"] == "Both ran."
    requests = fake.requests_for(marker)
    assert len(requests) == 2
    results = [b for b in requests[1]["messages"][-1]["content"] if b.get("type") == "tool_result"]
    assert len(results) == 2
    assert "TWO_TOOLS_OK" in str(results[1]["content"])


def test_500_without_retries_is_an_api_error(
    claude_bin: str, fake: FakeAnthropic, workspace: Path, tmp_path: Path
) -> None:
    marker = fake.scenario([error(500)])

    run = run_claude(claude_bin, fake, f"fail {marker}", workspace, tmp_path / "home", max_retries=0)

    assert run.returncode == 1, run.stdout + run.stderr
    assert run.result["is_error"] is True
    assert run.result["api_error_status"] == 500
    assert "fake injected error" in run.result["result"]
    assert len(fake.requests_for(marker)) == 1


def test_one_429_then_success_with_one_retry(
    claude_bin: str, fake: FakeAnthropic, workspace: Path, tmp_path: Path
) -> None:
    marker = fake.scenario([error(429, times=1), text("Recovered after 429.")])

    run = run_claude(claude_bin, fake, f"retry {marker}", workspace, tmp_path / "home", max_retries=1)

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.result["is_error"] is False
    assert run.result["result"] == "Recovered after 429."
    retries = [e for e in run.events if e.get("type") == "system" and e.get("subtype") == "api_retry"]
    assert [r["error_status"] for r in retries] == [429]
    assert len(fake.requests_for(marker)) == 2


def test_two_concurrent_runs_get_their_own_scenarios(
    claude_bin: str, fake: FakeAnthropic, tmp_path: Path
) -> None:
    names = ("alpha", "beta")
    markers = {
        n: fake.scenario(
            [
                tool("Bash", {"command": f"echo {n.upper()}_RAN", "description": "echo"}, delay=0.3),
                text(f"Finished {n}.", delay=0.3),
            ]
        )
        for n in names
    }
    procs: dict[str, subprocess.Popen[str]] = {}
    outputs: dict[str, Run] = {}
    try:
        for n in names:
            ws = tmp_path / n
            ws.mkdir()
            procs[n] = subprocess.Popen(
                _argv(claude_bin, f"run {n} {markers[n]}"),
                cwd=ws,
                env=_env(fake, tmp_path / f"home-{n}", 0),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        for n, proc in procs.items():
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
            outputs[n] = Run(proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    for n in names:
        other = next(o for o in names if o != n)
        run = outputs[n]
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.result["result"] == f"Finished {n}."
        contents = " ".join(str(r["content"]) for r in run.tool_results())
        assert f"{n.upper()}_RAN" in contents
        assert f"{other.upper()}_RAN" not in contents
        assert len(fake.requests_for(markers[n])) == 2


def test_no_marker_gets_ok_and_endpoints_answer(fake: FakeAnthropic) -> None:
    host, port = fake.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        conn.request("POST", "/v1/messages?beta=true", json.dumps(body))
        reply = json.loads(conn.getresponse().read())
        assert reply["content"] == [{"type": "text", "text": "ok"}]
        assert reply["stop_reason"] == "end_turn"

        conn.request("POST", "/v1/messages/count_tokens", json.dumps(body))
        assert json.loads(conn.getresponse().read())["input_tokens"] > 0

        conn.request("GET", "/v1/models")
        assert json.loads(conn.getresponse().read())["data"]

        conn.request("HEAD", "/anything")
        head = conn.getresponse()
        head.read()
        assert head.status == 200

        conn.request("GET", "/v1/nope")
        missing = conn.getresponse()
        assert missing.status == 404
        assert json.loads(missing.read())["error"]["type"] == "not_found_error"
    finally:
        conn.close()


def test_stop_does_not_wait_for_stalled_stream() -> None:
    server = FakeAnthropic()
    server.start()
    marker = server.scenario([stall(60)])
    port = int(server.base_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = {"stream": True, "messages": [{"role": "user", "content": f"hang {marker}"}]}
        conn.request("POST", "/v1/messages", json.dumps(body))
        response = conn.getresponse()
        assert response.status == 200
        assert b"message_start" in response.readline()

        stopper = threading.Thread(target=server.stop)
        started = time.monotonic()
        stopper.start()
        stopper.join(timeout=5)
        assert not stopper.is_alive()
        assert time.monotonic() - started < 3
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        conn.close()
        server.stop()


def _post(fake: FakeAnthropic, marker: str, assistant_turns: int) -> tuple[int, dict[str, Any], str | None]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"go {marker}"}]
    messages.append({"role": "system", "content": "environment"})
    for _ in range(assistant_turns):
        messages += [{"role": "assistant", "content": "..."}, {"role": "user", "content": "next"}]
    port = int(fake.base_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", "/v1/messages?beta=true", json.dumps({"model": "m", "messages": messages}))
        response = conn.getresponse()
        return response.status, json.loads(response.read()), response.getheader("Retry-After")
    finally:
        conn.close()


def test_step_selection_rules(fake: FakeAnthropic) -> None:
    once = fake.scenario([text("first")])
    assert _post(fake, once, 0)[1]["content"][0]["text"] == "first"
    assert _post(fake, once, 1)[1]["content"][0]["text"] == "done"

    looping = fake.scenario([text("first"), tool("Bash", {"command": "true"})], repeat_last=True)
    for turns in (1, 2, 5):
        assert _post(fake, looping, turns)[1]["stop_reason"] == "tool_use"

    flaky = fake.scenario([error(503, times=2, retry_after=1.5), text("finally")], name="flaky-503")
    assert flaky == "[[scenario:flaky-503]]"
    first, second, third = (_post(fake, flaky, 0) for _ in range(3))
    assert first[0] == second[0] == 503
    assert first[1] == {"type": "error", "error": {"type": "api_error", "message": "fake injected error"}}
    assert first[2] == "1.5"
    assert third[0] == 200
    assert third[1]["content"][0]["text"] == "finally"
    assert len(fake.requests_for("flaky-503")) == len(fake.requests_for(flaky)) == 3
