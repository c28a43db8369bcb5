"""The Python client against the real server: every method, typed errors, log streams that resume."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from orchestrator.client import (
    AsyncClient,
    Client,
    Conflict,
    ConnectionFailed,
    InvalidRequest,
    LogEnd,
    LogEvent,
    NotFound,
    RetryPolicy,
    Unauthorized,
    Unavailable,
)
from orchestrator.client.errors import OrchestratorError, error_from_response
from orchestrator.client.stream import SSEDecoder
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.types import AgentStatus, TaskStatus
from orchestrator.models import LogLine, TaskUpdate
from tests.conftest import ServerFactory
from tests.support import fake_anthropic as fm
from tests.support.fake_github import FakeGitHub
from tests.support.git_http import GitHttpServer
from tests.support.receiver import Receiver
from tests.support.repos import git
from tests.support.server import Server, free_port

SSE = "text/event-stream"


def _steps(fake_model: fm.FakeAnthropic, n: int = 4, delay: float = 0.3) -> str:
    steps = [
        fm.tool("Bash", {"command": f"echo step-{i}", "description": f"step {i}"}, delay=delay)
        for i in range(n)
    ]
    return fake_model.scenario([*steps, fm.text("all steps done", delay=delay)])


# ---- a transport that drops live log streams, to prove the client resumes them ----


_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class _Cutter:
    """Lets exactly `events` whole SSE events through (however the bytes are chunked), then half of the
    next event if it is in the same chunk, then says the connection is to break."""

    def __init__(self, events: int) -> None:
        self.left = events
        self.tail = b""  # the end of the unfinished event: a separator may straddle two chunks

    def feed(self, chunk: bytes) -> tuple[bytes, bool]:
        data = self.tail + chunk
        ends = [m.end() for m in _EVENT_END.finditer(data)]
        if len(ends) < self.left:
            self.left -= len(ends)
            self.tail = data[ends[-1] if ends else 0 :][-3:]
            return chunk, False
        cut = ends[self.left - 1] if self.left else len(self.tail)
        following = ends[self.left] if len(ends) > self.left else len(data)
        return data[len(self.tail) : cut + (following - cut) // 2], True


class _DroppingStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, events: int) -> None:
        self.inner, self.cutter = inner, _Cutter(events)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            passed, drop = self.cutter.feed(chunk)
            yield passed
            if drop:
                raise httpx.ReadError("connection dropped by the test")

    def close(self) -> None:
        self.inner.close()


class DroppingTransport(httpx.BaseTransport):
    """The real network, except that the n-th log stream breaks after drops[n] events."""

    def __init__(self, drops: list[int]) -> None:
        self.inner = httpx.HTTPTransport()
        self.drops = drops
        self.streams: list[httpx.Headers] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.headers.get("accept") == SSE:
            self.streams.append(request.headers)
            if self.drops:
                assert isinstance(response.stream, httpx.SyncByteStream)
                response.stream = _DroppingStream(response.stream, self.drops.pop(0))
        return response

    def close(self) -> None:
        self.inner.close()


class _AsyncDroppingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, events: int) -> None:
        self.inner, self.cutter = inner, _Cutter(events)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            passed, drop = self.cutter.feed(chunk)
            yield passed
            if drop:
                raise httpx.ReadError("connection dropped by the test")

    async def aclose(self) -> None:
        await self.inner.aclose()


class AsyncDroppingTransport(httpx.AsyncBaseTransport):
    def __init__(self, drops: list[int]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.drops = drops
        self.streams: list[httpx.Headers] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.headers.get("accept") == SSE:
            self.streams.append(request.headers)
            if self.drops:
                assert isinstance(response.stream, httpx.AsyncByteStream)
                response.stream = _AsyncDroppingStream(response.stream, self.drops.pop(0))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


# ---- without a server: the pure parts ----


def test_retry_policy_decides_wait_or_give_up() -> None:
    policy = RetryPolicy(attempts=3, backoff=0.5, max_backoff=1.5)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, None]
    assert policy.delay(1, hint=1.2) == 1.2
    assert policy.delay(1, hint=60) == 1.5
    assert RetryPolicy(attempts=0).delay(1) is None


def test_sse_decoder_events_comments_and_multiline_data() -> None:
    decoder = SSEDecoder()
    lines = [": ping", "", "event: log", "id: 7", 'data: {"a":', "data: 1}", "", "data:plain", ""]
    events = [e for e in map(decoder.feed, lines) if e is not None]
    assert [(e.event, e.id, e.data) for e in events] == [
        ("log", "7", '{"a":\n1}'),
        ("message", None, "plain"),
    ]


def test_the_test_transport_cuts_after_exactly_n_events_however_chunked() -> None:
    stream = b"".join(f"event: log\r\nid: {i}\r\ndata: {{}}\r\n\r\n".encode() for i in range(1, 6))
    for size in (1, 7, 40, len(stream)):
        cutter, passed = _Cutter(3), b""
        for start in range(0, len(stream), size):
            part, drop = cutter.feed(stream[start : start + size])
            passed += part
            if drop:
                break
        decoder = SSEDecoder()
        lines = passed.decode().replace("\r\n", "\n").split("\n")
        ids = [e.id for e in map(decoder.feed, lines) if e is not None]
        assert ids == ["1", "2", "3"], (size, passed)


def test_error_answers_become_typed_exceptions() -> None:
    def answer(status: int, body: str, **headers: str) -> httpx.Response:
        return httpx.Response(status, text=body, headers=headers)

    gone = error_from_response(answer(404, '{"detail": "agent \'x\' not found"}'))
    assert isinstance(gone, NotFound) and gone.status_code == 404 and gone.detail == "agent 'x' not found"
    assert isinstance(error_from_response(answer(422, '{"detail": "prompt: required"}')), InvalidRequest)
    assert isinstance(error_from_response(answer(400, "bad")), InvalidRequest)
    assert isinstance(error_from_response(answer(403, "{}")), Unauthorized)
    busy = error_from_response(answer(503, '{"detail": "database unavailable"}', **{"Retry-After": "2"}))
    assert isinstance(busy, Unavailable) and busy.retry_after == 2.0
    assert error_from_response(answer(502, "<html>proxy</html>")).detail == "<html>proxy</html>"


def test_retries_reads_on_connection_errors_but_never_a_spawn() -> None:
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) % 3 != 0:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"ids": ["coding-1"]})

    policy = RetryPolicy(attempts=2, backoff=0.01)
    with Client("http://orchestrator.test", retries=policy, transport=httpx.MockTransport(flaky)) as client:
        assert client.active_agents().ids == ["coding-1"]
        assert calls == ["GET"] * 3
        calls.clear()
        with pytest.raises(ConnectionFailed, match="cannot reach"):
            client.spawn_agent("coding", "hi")
        assert calls == ["POST"]


def test_unreachable_server_is_connection_failed() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with (
        Client(url, retries=RetryPolicy(attempts=1, backoff=0.05)) as client,
        pytest.raises(ConnectionFailed) as raised,
    ):
        client.health()
    assert raised.value.status_code is None and url in raised.value.detail
    with pytest.raises(ValueError, match="http"):
        Client("localhost:3020")


# ---- against the real server ----


def test_tasks_and_queue(server: Server) -> None:
    with Client(server.url, token=server.token) as client:
        health = client.health()
        assert health.status == "ok" and health.database == "ok"

        task = client.create_task("Add a README", task_id="t-readme", description="short", repos=["app"])
        assert (task.id, task.status, task.repo) == ("t-readme", TaskStatus.PENDING, "app")
        with pytest.raises(Conflict, match="exists already") as raised:
            client.create_task("again", task_id="t-readme")
        assert raised.value.status_code == 409
        other = client.create_task("Second", priority=3)
        assert other.id.startswith("task-")

        assert (
            client.update_task("t-readme", TaskUpdate(title="Add a good README")).title == "Add a good README"
        )
        assert client.update_task("t-readme", {"priority": 5}).priority == 5
        with pytest.raises(InvalidRequest, match="priority"):
            client.update_task("t-readme", {"priority": 5000})
        page = client.list_tasks(status="pending", limit=1)
        assert (page.total, len(page.items), page.limit) == (2, 1, 1)
        assert client.get_task("t-readme").agents == []

        assert client.pause_queue().paused is True
        item = client.queue_add("t-readme")
        assert (item.task_id, item.status) == ("t-readme", "queued")
        with pytest.raises(Conflict, match="already"):
            client.queue_add("t-readme")
        with pytest.raises(NotFound):
            client.queue_add("no-such-task")
        status = client.queue_status()
        assert [i.task_id for i in status.items] == ["t-readme"] and status.queued == 1
        assert status.settings.paused is True
        assert client.set_queue_setting("max_concurrent", "3").max_concurrent == 3
        with pytest.raises(InvalidRequest, match="colour"):
            client.set_queue_setting("colour", "blue")
        assert client.queue_settings().max_concurrent == 3
        assert client.queue_remove("t-readme").items == []
        with pytest.raises(NotFound):
            client.queue_remove("t-readme")
        assert client.queue_clear().removed == 0
        assert client.resume_queue().paused is False

        client.delete_task("t-readme")
        with pytest.raises(NotFound, match="t-readme") as missing:
            client.get_task("t-readme")
        assert missing.value.status_code == 404


def test_agents_and_a_log_stream_that_survives_dropped_connections(
    server: Server, fake_model: fm.FakeAnthropic
) -> None:
    transport = DroppingTransport(drops=[3, 2])
    with Client(server.url, token=server.token, transport=transport) as client:
        with pytest.raises(InvalidRequest, match="agent_type"):
            client.spawn_agent("wizard", "hi")
        with pytest.raises(NotFound, match="task_id"):
            client.spawn_agent("coding", task_id="no-such-task")
        agent = client.spawn_agent("coding", f"steps {_steps(fake_model)}", max_turns=20)
        assert agent.status in (AgentStatus.STARTING, AgentStatus.RUNNING) and agent.max_turns == 20

        events: list[LogEvent] = list(client.stream_logs(agent.id))
        lines = [e for e in events if isinstance(e, LogLine)]
        end = events[-1]
        assert isinstance(end, LogEnd) and end.agent.status == AgentStatus.COMPLETED
        assert all(isinstance(e, LogLine) for e in events[:-1])

        stored = [line.id for line in client.iter_logs(agent.id)]
        assert [line.id for line in lines] == stored, "a line was lost or doubled across the drops"
        assert len(transport.streams) == 3
        assert "last-event-id" not in transport.streams[0]
        assert transport.streams[1]["last-event-id"] == str(stored[2])
        assert transport.streams[2]["last-event-id"] == str(stored[4])

        resumed = list(client.stream_logs(agent.id, after=stored[-3]))
        assert [e.id for e in resumed if isinstance(e, LogLine)] == stored[-2:]

        page = client.agent_logs(agent.id, limit=2)
        assert page.has_more and [i.id for i in page.items] == stored[:2] and page.status == "completed"

        detail = client.get_agent(agent.id)
        assert detail.prompt.startswith("steps") and detail.log_lines == len(stored)
        assert detail.metadata["result"] == "all steps done"
        assert [a.id for a in client.list_agents(status="completed", agent_type="coding").items] == [agent.id]
        assert client.list_agents(status="failed").total == 0
        assert client.analytics().by_status == {"completed": 1}
        with pytest.raises(Conflict, match="already ended"):
            client.kill_agent(agent.id)

        again = client.retry_agent(agent.id)
        assert again.retry_of == agent.id and again.id != agent.id
        assert again.id in client.active_agents().ids
        killed = client.kill_agent(again.id)
        assert killed.id == again.id
        assert server.wait_agent(again.id)["status"] == "killed"
        with pytest.raises(NotFound):
            client.get_agent("coding-00000000")
        with pytest.raises(NotFound):
            list(client.stream_logs("coding-00000000"))


def test_token(make_server: ServerFactory) -> None:
    server = make_server(ORCHESTRATOR_API_TOKEN="s3cret-token")
    with Client(server.url, token="") as anonymous:
        assert anonymous.health().status == "ok"
        with pytest.raises(Unauthorized, match="API token") as refused:
            anonymous.list_agents()
        assert refused.value.status_code == 401
    with Client(server.url, token="wrong") as wrong, pytest.raises(Unauthorized):
        wrong.queue_status()
    with Client(server.url, token="s3cret-token") as client:
        assert client.list_agents().total == 0


def test_token_and_url_from_the_environment(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_URL", server.url + "/")
    monkeypatch.setenv("ORCHESTRATOR_API_TOKEN", "from-env")
    with Client() as client:
        assert client.base_url == server.url
        with pytest.raises(Unauthorized):
            client.queue_settings()
    assert server.token
    monkeypatch.setenv("ORCHESTRATOR_API_TOKEN", server.token)
    with Client() as client:
        assert client.queue_settings().paused is False


def test_the_token_a_local_server_generated_is_found_in_its_data_directory(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_API_TOKEN", raising=False)
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(server.data_dir))
    with Client(server.url) as client:
        assert client.queue_settings().paused is False
        assert client.health().instance_id, "the details of the health check go to the token's holder"
    with Client(server.url, token="") as anonymous:
        health = anonymous.health()
        assert health.status == "ok" and health.instance_id is None and health.database is None
        with pytest.raises(Unauthorized):
            anonymous.queue_settings()


def test_async_client(server: Server, fake_model: fm.FakeAnthropic) -> None:
    async def run() -> None:
        transport = AsyncDroppingTransport(drops=[2])
        async with AsyncClient(server.url, token=server.token, transport=transport) as client:
            assert (await client.health()).status == "ok"
            task = await client.create_task("async task")
            assert (await client.get_task(task.id)).title == "async task"
            assert (await client.list_tasks()).total == 1
            assert (await client.pause_queue()).paused is True
            assert (await client.queue_add(task.id)).task_id == task.id
            assert (await client.queue_status()).queued == 1
            with pytest.raises(NotFound):
                await client.get_agent("coding-00000000")

            agent = await client.spawn_agent("coding", f"go {_steps(fake_model, n=2, delay=0.2)}")
            events = [e async for e in client.stream_logs(agent.id)]
            end = events[-1]
            assert isinstance(end, LogEnd) and end.agent.status == AgentStatus.COMPLETED
            stored = [line.id async for line in client.iter_logs(agent.id)]
            assert [e.id for e in events if isinstance(e, LogLine)] == stored
            assert transport.streams[1]["last-event-id"] == str(stored[1])
            assert (await client.list_agents()).total == 1
            assert (await client.analytics()).total == 1

    asyncio.run(run())


def test_webhooks_and_a_budgeted_agent(make_server: ServerFactory, fake_model: fm.FakeAnthropic) -> None:
    server = make_server(WEBHOOK_ALLOW_HOSTS="127.0.0.1")  # the receiver is on loopback
    with Receiver() as receiver, Client(server.url, token=server.token) as client:
        hook = client.create_webhook(receiver.url, ["agent.failed", "agent.budget_exceeded"], "s3cret-value")
        assert [h.id for h in client.list_webhooks()] == [hook.id]
        assert "s3cret" not in client.list_webhooks()[0].model_dump_json()
        with pytest.raises(InvalidRequest, match="event_types"):
            client.create_webhook(receiver.url, ["agent.exploded"], "s3cret-value")

        marker = fake_model.scenario([fm.tool("Bash", {"command": f"echo {i}"}) for i in range(8)])
        agent = client.spawn_agent("coding", f"loop {marker}", budget={"turns": 2})
        deadline = time.monotonic() + 60
        while client.get_agent(agent.id).status in (AgentStatus.STARTING, AgentStatus.RUNNING):
            assert time.monotonic() < deadline, "the budgeted agent never ended"
            time.sleep(0.1)
        ended = client.get_agent(agent.id)
        assert ended.status == AgentStatus.FAILED and "budget" in (ended.error or "")
        assert ended.end_reason == EndReason.BUDGET_EXCEEDED
        while len(receiver.received) < 2:
            assert time.monotonic() < deadline, f"deliveries: {receiver.received}"
            time.sleep(0.1)
        deliveries = client.webhook_deliveries(hook.id)
        assert sorted(d.event_type for d in deliveries) == ["agent.budget_exceeded", "agent.failed"]
        assert {d.payload["data"]["agent_id"] for d in deliveries} == {agent.id}

        client.delete_webhook(hook.id)
        assert client.list_webhooks() == []
        with pytest.raises(NotFound):
            client.delete_webhook(hook.id)


def test_events(server: Server) -> None:
    with Client(server.url, token=server.token) as client:
        task = client.create_task("with events")
        event = client.create_event(
            "deploy.requested", event_id="evt-client-1", task_id=task.id, payload={"why": "manual"}
        )
        assert (event.id, event.type, event.status, event.payload) == (
            "evt-client-1",
            "deploy.requested",
            "pending",
            {"why": "manual"},
        )
        again = client.create_event("deploy.requested", event_id="evt-client-1", payload={"why": "other"})
        assert again.payload == {"why": "manual"}, "an event with a known id is stored once"
        anonymous = client.create_event("audit.requested")
        assert anonymous.id.startswith("evt-") and anonymous.task_id is None
        with pytest.raises(InvalidRequest, match="type"):
            client.create_event("task.exploded")
        with pytest.raises(NotFound, match="task_id"):
            client.create_event("deploy.requested", task_id="no-such-task")

        assert client.list_events().total == 2
        assert [e.id for e in client.list_events(task_id=task.id).items] == ["evt-client-1"]
        assert client.list_events(event_type="audit.requested").items[0].id == anonymous.id
        assert client.pending_events().total == 2
        assert client.get_event("evt-client-1").task_id == task.id
        assert client.mark_event_processed("evt-client-1").status == "processed"
        assert [e.id for e in client.processed_events().items] == ["evt-client-1"]
        assert client.list_events(status="pending").total == 1
        with pytest.raises(NotFound):
            client.get_event("evt-nope")


def test_github(make_server: ServerFactory, tmp_path: Path) -> None:
    with FakeGitHub() as github, GitHttpServer(tmp_path / "git-host", github.token) as host:
        github.add_repo("acme", "widgets", default_branch="develop")
        bare = host.add_repo("acme", "widgets")
        git("symbolic-ref", "HEAD", "refs/heads/develop", cwd=bare)
        server = make_server(
            GITHUB_TOKEN=github.token,
            GITHUB_OWNER="acme",
            GITHUB_API_URL=github.api_url,
            GITHUB_GIT_URL=host.url,
        )
        workspace = server.data_dir / "workspaces" / "task-7"
        git("clone", "--quiet", str(bare), str(workspace))
        git("checkout", "--quiet", "-b", "feature/widget", cwd=workspace)
        (workspace / "widget.py").write_text("WIDGET = 1\n")
        git("add", "widget.py", cwd=workspace)
        git("commit", "--quiet", "-m", "Add a widget", cwd=workspace)

        with Client(server.url, token=server.token) as client:
            status = client.github_status()
            assert (status.configured, status.valid, status.login) == (True, True, "octo-bot")
            assert client.github_repo("widgets").full_name == "acme/widgets"
            assert client.github_default_branch("acme/widgets").default_branch == "develop"
            assert client.github_clone_url("widgets").authenticated is False
            with pytest.raises(OrchestratorError, match="no longer given") as gone:
                client.github_clone_url("widgets", authenticated=True)
            assert gone.value.status_code == 410
            with pytest.raises(OrchestratorError, match="ensure-remote is gone") as removed:
                client.github_ensure_remote("widgets", "task-7")
            assert removed.value.status_code == 410
            pushed = client.github_push("widgets", "task-7", "feature/widget")
            assert pushed.sha == git("rev-parse", "refs/heads/feature/widget", cwd=bare)
            with pytest.raises(InvalidRequest, match="path"):
                client.github_push("widgets", "../elsewhere", "feature/widget")

            pull = client.github_create_pull("widgets", "feature/widget", "Add a widget", body="Closes #7")
            assert pull.created is True and pull.base.ref == "develop"
            again = client.github_create_pull("widgets", "feature/widget", "Add a widget")
            assert (again.created, again.number) == (False, pull.number)
            assert client.github_pull("acme/widgets", pull.number).head.ref == "feature/widget"
            assert [p.number for p in client.github_pulls("widgets", head="feature/widget")] == [pull.number]
            merged = client.github_merge_pull("widgets", pull.number, merge_method="squash")
            assert merged.merged is True
            with pytest.raises(Conflict, match="already merged"):
                client.github_merge_pull("widgets", pull.number)
            assert [p.merged for p in client.github_pulls("widgets", state="closed")] == [True]
            with pytest.raises(NotFound):
                client.github_pull("widgets", 999)


def test_a_tasks_timeline_its_diff_and_the_stats(server: Server, fake_model: fm.FakeAnthropic) -> None:
    with Client(server.url, token=server.token) as client:
        task = client.create_task("Timeline", description=f"do it {_steps(fake_model, n=1, delay=0.1)}")
        before = client.stats(hours=2, days=1)
        assert (len(before.hours), len(before.days)) == (2, 1)
        agent = client.spawn_agent("coding", task_id=task.id)
        end = list(client.stream_logs(agent.id))[-1]
        assert isinstance(end, LogEnd) and end.agent.status == AgentStatus.COMPLETED

        timeline = client.task_timeline(task.id)
        assert [(a.id, a.agent_type, a.status, a.round) for a in timeline.agents] == [
            (agent.id, "coding", "completed", 1)
        ]
        assert timeline.agents[0].end is not None and timeline.waits == []
        with pytest.raises(NotFound, match="branch"):
            client.task_diff(task.id)  # no branch in the service's mirror: the task ran no workflow
        with pytest.raises(InvalidRequest, match="page"):
            client.task_diff(task.id, page=0)
        with pytest.raises(NotFound):
            client.task_timeline("no-such-task")

        assert before.by_type == []
        # another window: an answer serves its window's callers for 5 s
        coding = [t for t in client.stats(hours=3, days=1).by_type if t.agent_type == "coding"]
        assert [(t.ended, t.completed, t.success_rate) for t in coding] == [(1, 1, 1.0)]
        with pytest.raises(InvalidRequest, match="hours"):
            client.stats(hours=1000)

    async def run() -> None:
        async with AsyncClient(server.url, token=server.token) as client:
            assert (await client.task_timeline(task.id)).agents[0].id == agent.id
            assert (await client.stats(hours=4, days=1)).by_type[0].completed == 1
            with pytest.raises(NotFound):
                await client.task_diff(task.id)

    asyncio.run(run())
