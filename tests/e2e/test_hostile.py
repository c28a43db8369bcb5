"""Hostile input through the real server: oversized and malformed bodies, NUL bytes and odd unicode,
path traversal and option injection, SSE readers that never read, a flood of spawns, a `claude` that
prints garbage or hundreds of megabytes, and one that ignores SIGTERM.

Whatever comes in: never a 500, nothing half-written, the service stays responsive with bounded memory.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.agents import blanks
from tests.support import fake_anthropic as fm
from tests.support import integrity
from tests.support.server import Server, agent_pids
from tests.support.sse import events

ServerFactory = Callable[..., Server]

RESULT_LINE = '{"type":"result","subtype":"success","is_error":false,"result":"ok"}'
RESULT_ONLY = f"#!/bin/sh\necho '{RESULT_LINE}'\n"
SSE = {"Accept": "text/event-stream"}
MB = 1 << 20


def script(tmp_path: Path, body: str, name: str = "claude") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def rss_mb(server: Server) -> float:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@contextmanager
def peak_rss(server: Server) -> Iterator[list[float]]:
    """Samples the server's RSS every 50 ms; yields [baseline, peak] (peak filled in at exit)."""
    result = [rss_mb(server), 0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            result[1] = max(result[1], rss_mb(server))
            stop.wait(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result[1] = max(result[1], rss_mb(server))


def healthy(server: Server, within: float = 10.0) -> None:
    """The service still answers (a request that hangs past `within` fails the test)."""
    response = server.client.get("/api/health", timeout=within)
    assert response.status_code == 200, response.text


def no_problems(server: Server) -> None:
    integrity.wait_agents_ended(server, timeout=20)
    assert integrity.problems(server, allow_active=False) == []


@pytest.fixture
def quick(make_server: ServerFactory, tmp_path: Path) -> Server:
    """A server whose agents print one result line and end."""
    return make_server(CLAUDE_BIN=script(tmp_path, f"echo '{RESULT_LINE}'\n"))


# --- oversized, malformed and deep bodies ------------------------------------------------------------

BLOB = "@BLOB@"  # replaced by 50 MB of "x" when the body is sent


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/agents/spawn", {"agent_type": "coding", "prompt": BLOB}),
        ("/api/tasks", {"title": "t", "description": BLOB}),
        ("/api/events", {"type": "deploy.requested", "payload": {"blob": BLOB}}),
        ("/api/queue/settings", {"key": "paused", "value": BLOB}),
    ],
    ids=["spawn", "task", "event", "queue-setting"],
)
def test_a_50_mb_body_is_refused_and_the_service_stays_healthy(
    quick: Server, path: str, body: dict[str, Any]
) -> None:
    raw = json.dumps(body).replace(BLOB, "x" * (50 * MB))
    response = quick.client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (413, 422), response.text[:300]
    assert len(response.content) < 10_000, "the refusal should not echo the body"
    healthy(quick)
    assert quick.client.get("/api/agents").json()["total"] == 0
    assert quick.client.get("/api/tasks").json()["total"] == 0


def test_malformed_and_deeply_nested_json_is_a_4xx(quick: Server) -> None:
    bodies = {
        "truncated": b'{"agent_type": "coding", "prompt": ',
        "deep arrays": b"[" * 100_000 + b"]" * 100_000,
        "deep objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "invalid utf-8": b'{"agent_type": "coding", "prompt": "\xff\xfe"}',
        "huge number": b'{"agent_type": "coding", "prompt": "x", "max_turns": 1' + b"0" * 5000 + b"}",
        "float overflow": b'{"agent_type": "coding", "prompt": "x", "timeout_seconds": 1e999}',
        "null": b"null",
        "string": b'"coding"',
        "nan": b'{"agent_type": "coding", "prompt": "x", "timeout_seconds": NaN}',
        "lone surrogate": b'{"agent_type": "coding", "prompt": "\\ud800"}',
        "empty": b"",
    }
    wrong = {}
    for name, raw in bodies.items():
        for path in ("/api/agents/spawn", "/api/tasks", "/api/events"):
            response = quick.client.post(path, content=raw, headers={"content-type": "application/json"})
            if not 400 <= response.status_code < 500:
                wrong[f"{name} -> {path}"] = (response.status_code, response.text[:200])
    assert wrong == {}
    healthy(quick)
    assert integrity.counts(quick)["agents"] == 0


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [33, 300])
def test_an_event_payload_nested_deeper_than_32_levels_is_refused_naming_it(
    quick: Server, depth: int
) -> None:
    raw = '{"id": "deep", "type": "deploy.requested", "payload": ' + _nested(depth) + "}"
    created = quick.client.post("/api/events", content=raw, headers={"content-type": "application/json"})
    assert created.status_code == 422, created.text[:200]
    assert created.json()["detail"].startswith("payload: "), created.text[:200]
    assert quick.client.get("/api/events/deep").status_code == 404
    assert quick.client.get("/api/events").json()["total"] == 0


def test_an_event_payload_nested_32_levels_deep_is_stored_intact(quick: Server) -> None:
    raw = '{"id": "deep", "type": "deploy.requested", "payload": ' + _nested(32) + "}"
    created = quick.client.post("/api/events", content=raw, headers={"content-type": "application/json"})
    assert created.status_code == 201, created.text[:200]
    stored = quick.client.get("/api/events/deep")
    assert stored.status_code == 200, stored.text[:200]
    assert stored.json()["payload"] == json.loads(_nested(32))


# --- unicode and NUL bytes -------------------------------------------------------------------------

ODD_TEXT = [
    "emoji 🧪🚀 and CJK 漢字",
    "right-to-left \u202egnp.exe and zero width \u200b\u200d",
    "combining e\u0301\u0301\u0301 and BOM \ufeff",
    "NUL \x00 inside",
    "control \x01\x1b[31m red \x7f",
    "newlines\r\nand\ttabs",
    "'; DROP TABLE tasks; --",
]


def test_odd_text_in_tasks_and_events_is_stored_and_returned_intact(quick: Server) -> None:
    client = quick.client
    for i, text in enumerate(ODD_TEXT):
        created = client.post("/api/tasks", json={"id": f"odd-{i}", "title": text, "description": text * 3})
        if "\x00" in text:  # refused on every store: PostgreSQL text cannot hold it, nor can a prompt
            assert created.status_code == 422 and "NUL" in created.text, created.text
            created = client.post("/api/tasks", json={"id": f"odd-{i}", "title": "t"})
            assert client.patch(f"/api/tasks/odd-{i}", json={"description": text}).status_code == 422
            assert client.get(f"/api/tasks/odd-{i}").json()["description"] is None
        else:
            assert created.status_code == 201, (text, created.text)
            task = client.get(f"/api/tasks/odd-{i}").json()
            assert (task["title"], task["description"]) == (text, text * 3)
            patched = client.patch(f"/api/tasks/odd-{i}", json={"title": text[::-1]})
            assert patched.status_code == 200 and patched.json()["title"] == text[::-1]
        event = client.post(
            "/api/events", json={"type": "deploy.requested", "task_id": f"odd-{i}", "payload": {text: text}}
        )
        assert event.status_code == 201, event.text
        assert client.get(f"/api/events/{event.json()['id']}").json()["payload"] == {text: text}
    assert client.get("/api/tasks", params={"limit": 500}).json()["total"] == len(ODD_TEXT)
    surrogate = client.post(
        "/api/tasks", content=b'{"title": "\\ud800"}', headers={"content-type": "application/json"}
    )
    assert surrogate.status_code == 422, surrogate.text
    no_problems(quick)


def test_odd_text_in_a_prompt_reaches_the_agent_intact(quick: Server) -> None:
    for text in ODD_TEXT:
        if "\x00" in text:
            continue
        agent = quick.spawn(text)
        assert quick.agent(agent["id"])["prompt"] == text
        assert quick.wait_agent(agent["id"])["status"] == "completed"
    no_problems(quick)


def test_a_nul_byte_in_a_prompt_is_refused_naming_the_prompt(quick: Server) -> None:
    response = quick.client.post("/api/agents/spawn", json={"agent_type": "coding", "prompt": "a\x00b"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("prompt: "), response.text
    assert quick.client.get("/api/agents").json()["total"] == 0
    no_problems(quick)


def test_a_task_with_a_nul_byte_is_refused_and_does_not_stop_the_queue(quick: Server) -> None:
    client = quick.client
    refused = client.post("/api/tasks", json={"id": "nul", "title": "a\x00b"})
    assert refused.status_code == 422 and "title" in refused.text, refused.text
    assert client.post("/api/tasks", json={"id": "fine", "title": "fine"}).status_code == 201
    assert client.post("/api/queue/add/fine").status_code == 201
    client.post("/api/queue/settings", json={"key": "stop_on_failure", "value": False})
    deadline = time.monotonic() + 10
    while client.get("/api/tasks/fine").json()["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, client.get("/api/queue").json()
        time.sleep(0.2)
    assert client.get("/api/tasks/fine").json()["status"] == "completed"
    no_problems(quick)


def test_an_agent_ended_by_the_usage_limit_is_an_end_the_checkers_know(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    limited = json.dumps(
        {
            "type": "result",
            "subtype": "success",
            "is_error": True,
            "result": "Claude usage limit reached|4102444800",
        }
    )
    server = make_server(CLAUDE_BIN=script(tmp_path, f"echo '{limited}'\n"))
    agent = server.spawn("hit the limit")
    assert server.wait_agent(agent["id"], timeout=20)["status"] == "rate_limited"
    no_problems(server)


# --- option injection and argv limits -----------------------------------------------------------------


def test_a_prompt_that_looks_like_an_option_reaches_the_model(
    make_server: ServerFactory, fake_model: fm.FakeAnthropic
) -> None:
    server = make_server()
    marker = fake_model.scenario([fm.text("answered")])
    agent = server.wait_agent(server.spawn(f"--version {marker}")["id"])
    assert fake_model.requests_for(marker), "the prompt never reached the model"
    assert agent["status"] == "completed", agent
    assert agent["metadata"]["result"] == "answered"


def test_a_prompt_within_the_documented_limit_runs(quick: Server) -> None:
    agent = quick.spawn("p" * 150_000)
    done = quick.wait_agent(agent["id"])
    assert done["status"] == "completed", done["error"]


def test_path_traversal_and_option_injection_in_names_are_refused(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server(
        CLAUDE_BIN=script(tmp_path, f"echo '{RESULT_LINE}'\n"),
        GITHUB_TOKEN="ghp_not_used_0000",
        GITHUB_API_URL="http://127.0.0.1:9",
    )
    (server.data_dir / "workspaces").mkdir(exist_ok=True)
    (server.data_dir / "workspaces" / "escape").symlink_to("/etc")
    client = server.client
    spawn = {"agent_type": "coding", "prompt": "x"}
    refused = [
        ("POST", "/api/agents/spawn", {**spawn, "repo": "../../etc"}),
        ("POST", "/api/agents/spawn", {**spawn, "repo": "-rf"}),
        ("POST", "/api/agents/spawn", {**spawn, "repo": "--upload-pack=touch /tmp/pwned"}),
        ("POST", "/api/agents/spawn", {**spawn, "repo": "a/../../b"}),
        ("POST", "/api/agents/spawn", {**spawn, "repo": "/etc/passwd"}),
        ("POST", "/api/agents/spawn", {**spawn, "repo": "a\x00b"}),
        ("POST", "/api/agents/spawn", {**spawn, "task_id": "../../x"}),
        ("POST", "/api/agents/spawn", {**spawn, "model": "--settings=/etc/passwd"}),
        ("POST", "/api/agents/spawn", {**spawn, "model": "x --dangerously"}),
        ("POST", "/api/tasks", {"id": "../x", "title": "t"}),
        ("POST", "/api/tasks", {"id": "-rf", "title": "t"}),
        ("POST", "/api/tasks", {"id": "a/b", "title": "t"}),
        ("POST", "/api/tasks", {"title": "t", "repos": ["ok", "../../etc"]}),
        ("POST", "/api/events", {"id": "../../x", "type": "deploy.requested"}),
        ("POST", "/api/events", {"id": "-x", "type": "deploy.requested"}),
        ("GET", "/api/github/repo/..%2F..%2Fetc", None),
        ("GET", "/api/github/repo/-rf", None),
        ("GET", "/api/github/repo/a/b/c", None),
        ("GET", "/api/github/prs/x?head=--force", None),
        ("GET", "/api/github/prs/x?base=..%2Fmain", None),
        ("GET", "/api/github/clone-url/--upload-pack=x", None),
        ("POST", "/api/github/push", {"repo": "x", "branch": "--force", "path": "w"}),
        ("POST", "/api/github/push", {"repo": "x", "branch": "main;touch /tmp/pwned", "path": "w"}),
        ("POST", "/api/github/push", {"repo": "x", "branch": "a..b", "path": "w"}),
        ("POST", "/api/github/push", {"repo": "x", "branch": "main", "path": "../../etc"}),
        ("POST", "/api/github/push", {"repo": "x", "branch": "main", "path": "/etc"}),
        ("POST", "/api/github/push", {"repo": "x", "branch": "main", "path": "escape"}),
        ("POST", "/api/github/push", {"repo": "-x", "branch": "main", "path": "w"}),
        ("POST", "/api/github/ensure-remote/x", {"path": "../../../"}),
        ("POST", "/api/github/ensure-remote/-x", {"path": "w"}),
        ("POST", "/api/github/pr", {"repo": "x", "head": "evil:--force", "title": "t"}),
        ("POST", "/api/github/pr", {"repo": "x", "head": "main", "base": "--x", "title": "t"}),
        ("POST", "/api/github/pr/x/1/merge", {"sha": "--x"}),
    ]
    wrong = []
    for method, path, body in refused:
        response = client.request(method, path, json=body)
        if response.status_code not in (400, 404, 422):
            wrong.append((method, path, body, response.status_code, response.text[:200]))
    not_found = [
        ("GET", "/api/tasks/..%2F..%2Fetc%2Fpasswd"),
        ("PATCH", "/api/tasks/..%2F..%2Fetc%2Fpasswd"),
        ("DELETE", "/api/tasks/..%2F..%2Fetc%2Fpasswd"),
        ("POST", "/api/queue/add/..%2F..%2Fx"),
        ("DELETE", "/api/queue/..%2Fx"),
        ("GET", "/api/events/..%2F..%2Fx"),
        ("POST", "/api/events/..%2Fx/processed"),
        ("GET", "/api/agents/..%2F..%2Fx"),
        ("GET", "/api/agents/..%2F..%2Fx/logs"),
        ("POST", "/api/agents/-rf/kill"),
        ("POST", "/api/agents/..%2Fx/retry"),
    ]
    for method, path in not_found:
        response = client.request(method, path, json={"title": "x"} if method == "PATCH" else None)
        if response.status_code not in (404, 422):
            wrong.append((method, path, None, response.status_code, response.text[:200]))
    assert wrong == []
    assert not Path("/tmp/pwned").exists()
    assert integrity.counts(server)["agents"] == 0
    made = sorted(p.name for p in (server.data_dir / "workspaces").iterdir() if p.name != blanks.FOLDER)
    assert made == ["escape"], "the service's own folder of blanks aside"
    healthy(server)


def test_the_inbox_ignores_what_is_not_a_plain_small_json_file(quick: Server) -> None:
    inbox = quick.data_dir / "events"

    def drop(name: str, text: str) -> None:
        # as an agent should: written aside, then renamed in, so that no scan reads half a file
        aside = inbox / f".writing-{name}"
        aside.write_text(text)
        aside.rename(inbox / name)

    assert quick.client.post("/api/tasks", json={"id": "t1", "title": "t"}).status_code == 201
    os.mkfifo(inbox / "fifo.json")
    (inbox / "zero.json").symlink_to("/dev/zero")
    (inbox / "dir.json").mkdir()
    drop("-rf.json", json.dumps({"type": "deploy.requested"}))
    drop(".hidden.json", json.dumps({"type": "deploy.requested"}))
    drop("big.json", json.dumps({"type": "deploy.requested", "payload": {"b": "x" * 2 * MB}}))
    (inbox / "broken.json").symlink_to(inbox / "missing")
    drop("list.json", "[1, 2]")
    drop("evil.json", json.dumps({"id": "../../x", "type": "deploy.requested"}))
    drop("good.json", json.dumps({"type": "deploy.requested", "task_id": "t1"}))
    # a scan takes the files in name order, and the one that saw this last file saw every other: once it
    # is stored, that scan has decided on each file before it, and later scans decide the same
    drop("zz-last.json", json.dumps({"type": "deploy.requested", "task_id": "t1"}))
    deadline = time.monotonic() + 15
    while quick.client.get("/api/events/inbox-zz-last").status_code != 200:
        assert time.monotonic() < deadline, "the last file was never ingested"
        time.sleep(0.1)
    stored = sorted(e["id"] for e in quick.client.get("/api/events").json()["items"])
    assert stored == ["inbox-good", "inbox-zz-last"]
    quarantined = sorted(p.name for p in (inbox / "quarantine").iterdir())
    assert quarantined == [
        "big.json",
        "big.json.error",
        "evil.json",
        "evil.json.error",
        "list.json",
        "list.json.error",
    ]
    assert sorted(p.name for p in (inbox / "ingested").iterdir()) == ["good.json", "zz-last.json"]
    left = sorted(p.name for p in inbox.iterdir() if p.name not in ("quarantine", "ingested"))
    assert left == ["-rf.json", ".hidden.json", "broken.json", "dir.json", "fifo.json", "zero.json"]
    healthy(quick)


# --- SSE readers that never read --------------------------------------------------------------------


def _stalled_reader(server: Server, path: str) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    auth = "".join(f"{name}: {value}\r\n" for name, value in server.headers.items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n{auth}\r\n".encode())
    return sock


def test_sse_readers_that_never_read_cost_bounded_memory_and_slow_no_one(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    lines = 60_000
    printer = script(
        tmp_path,
        "sleep 0.5\n"
        # coreutils, not python3: a python3 under the service's HOME (pyenv) is hidden by the sandbox
        f"yes {'y' * 199} | head -n {lines}\n"
        f"echo '{RESULT_LINE}'\n",
    )
    server = make_server(CLAUDE_BIN=printer)
    agent = server.spawn("print a lot")
    path = f"/api/agents/{agent['id']}/logs"
    stalled = [_stalled_reader(server, path) for _ in range(5)]
    try:
        with peak_rss(server) as rss:
            received = 0
            end = None
            with server.client.stream("GET", path, headers=SSE, timeout=120) as response:
                for event in events(response):
                    if event.event == "end":
                        end = event.data
                        break
                    received += 1
            healthy(server)
    finally:
        for sock in stalled:
            sock.close()
    assert end is not None and end["status"] == "completed"
    assert received == lines + 1 == end["log_lines"]
    baseline, peak = rss
    assert peak - baseline < 120, f"RSS grew from {baseline:.0f} MB to {peak:.0f} MB"


# --- a flood of spawns ------------------------------------------------------------------------------


def test_a_flood_of_spawns_is_refused_with_429_past_the_rate(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server(CLAUDE_BIN=script(tmp_path, f"echo '{RESULT_LINE}'\n"), SPAWN_RATE_PER_MINUTE="10")
    body = {"agent_type": "coding", "prompt": "flood"}
    with (
        httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        answers = list(pool.map(lambda _: client.post("/api/agents/spawn", json=body), range(40)))
    codes = [a.status_code for a in answers]
    assert set(codes) <= {201, 429}, codes
    assert codes.count(201) <= 10, codes
    assert all("retry-after" in a.headers for a in answers if a.status_code == 429)
    assert server.client.get("/api/agents").json()["total"] == codes.count(201)
    no_problems(server)


# --- a claude that prints garbage, or a lot ----------------------------------------------------------


def test_a_claude_printing_garbage_and_200_mb_lines_is_cut_and_ends(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    max_bytes = 65_536
    release = tmp_path / "release"
    garbage = script(
        tmp_path,
        "echo 'this is not json {{{'\n"
        "printf '\\377\\376 binary \\000 bytes\\n'\n"
        "head -c 100000000 /dev/zero | tr '\\000' a; echo\n"
        'echo \'{"type": "assistant", "broken": \'\n'
        "head -c 100000000 /dev/zero | tr '\\000' b; echo\n"
        f"echo '{RESULT_LINE}'\n"
        # stays until the test has seen every line stored: the drain after exit is tested below
        f"while [ ! -e {release} ]; do sleep 0.05; done\n",
    )
    # AGENT_SANDBOX=none: `release` is in the test's /tmp, which a sandbox replaces with its own
    server = make_server(CLAUDE_BIN=garbage, LOG_LINE_MAX_BYTES=str(max_bytes), AGENT_SANDBOX="none")
    with peak_rss(server) as rss:
        agent = server.spawn("print garbage")
        deadline = time.monotonic() + 90
        while not any(line["content"] == RESULT_LINE for line in server.logs(agent["id"])):
            assert time.monotonic() < deadline, server.logs(agent["id"])[-3:]
            healthy(server)
            time.sleep(0.1)
        release.touch()
        done = server.wait_agent(agent["id"])
    assert done["status"] == "completed", (done["error"], server.logs(agent["id"])[-3:])
    logs = server.logs(agent["id"])
    contents = [line["content"] for line in logs]
    assert contents[0] == "this is not json {{{"
    assert "binary" in contents[1] and "\x00" not in contents[1]
    cut = [c for c in contents if "…[cut " in c]
    assert len(cut) == 2 and cut[0].startswith("a" * 1000) and cut[1].startswith("b" * 1000)
    assert all(len(c.encode()) <= max_bytes + 100 for c in contents)
    assert contents[3] == '{"type": "assistant", "broken": '
    assert contents[-1] == RESULT_LINE
    assert done["log_lines"] == len(logs) == 6
    assert rss[1] - rss[0] < 150, f"RSS grew from {rss[0]:.0f} MB to {rss[1]:.0f} MB"
    no_problems(server)


def test_no_line_is_lost_after_a_line_longer_than_a_read_chunk(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    long_line = script(
        tmp_path,
        # written in one go just before the exit, so most of it is read after the process ended
        f"head -c 30000000 /dev/zero | tr '\\000' a > {out}; echo >> {out}\n"
        f"echo 'the line after' >> {out}\n"
        f"echo '{RESULT_LINE}' >> {out}\n"
        f"cat {out}\n",
    )
    server = make_server(CLAUDE_BIN=long_line, AGENT_SANDBOX="none")  # `out` is in the test's /tmp
    done = server.wait_agent(server.spawn("one long line")["id"])
    contents = [line["content"] for line in server.logs(done["id"])]
    assert contents[1:] == ["the line after", RESULT_LINE], [c[-40:] for c in contents]
    assert done["status"] == "completed", done["error"]


# --- a claude that ignores SIGTERM ------------------------------------------------------------------

DEAF = "trap '' TERM\necho started\nwhile :; do sleep 0.2; done\n"


def _wait_started(server: Server, agent_id: str) -> None:
    deadline = time.monotonic() + 15
    while not any(line["content"] == "started" for line in server.logs(agent_id)):
        assert time.monotonic() < deadline, "the agent never printed"
        time.sleep(0.05)


def test_a_claude_ignoring_sigterm_is_killed_within_the_grace(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    grace = 2.0
    server = make_server(CLAUDE_BIN=script(tmp_path, DEAF), AGENT_KILL_GRACE_SECONDS=str(grace))
    agent = server.spawn("ignore TERM")
    _wait_started(server, agent["id"])
    assert agent_pids(agent["id"]), "no agent process found"
    start = time.monotonic()
    response = server.client.post(f"/api/agents/{agent['id']}/kill")
    took = time.monotonic() - start
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "killed"
    assert took > grace - 0.5, f"kill took {took:.1f} s: the {grace} s grace was not given"
    assert agent_pids(agent["id"]) == []

    timed = server.spawn("ignore TERM until the timeout", timeout_seconds=1)
    _wait_started(server, timed["id"])
    done = server.wait_agent(timed["id"], timeout=1 + grace + 5)
    assert done["status"] == "timeout"
    assert agent_pids(timed["id"]) == []
    no_problems(server)
