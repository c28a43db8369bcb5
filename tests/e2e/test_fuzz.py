"""Schemathesis against the real server's own /openapi.json: every operation, with the token the server
generated and with one set by the operator, and without any token.

Each operation is fuzzed twice over: with generated path parameters (mostly unknown ids) and with the
ids of rows seeded for it (an existing task that is queued, an event, a finished agent, a repository on
a fake GitHub), in positive and negative mode. Checks: no 5xx, every status code, content type, header
and body as documented, invalid data refused with a 4xx; afterwards no half-written row in the
database. Without the token every operation but the health check answers 401 and writes nothing.

Bounded and repeatable: a fixed number of examples per operation and `derandomize`, so a failure
found here is found again on the next run. Agents are a shell script that prints one result line; the
queue is paused. Not fuzzed by schemathesis: the SSE variant of the logs endpoint and the change stream
(streams it cannot read as one document: it waits on them until the test's timeout);
tests/e2e/test_hostile.py and tests/e2e/test_changes.py cover them.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi import checks as openapi_checks

from orchestrator.app import create_app
from orchestrator.settings import Settings
from tests.support import integrity
from tests.support.fake_github import FakeGitHub
from tests.support.server import Server
from tests.support.sse import events

EXAMPLES = 20
API_MAX_BODY_BYTES = Settings.model_fields["api_max_body_bytes"].default  # the servers here keep it
TOKEN = "fuzz-token-0123456789abcdef"
OWNER = "Kroket93"
RESULT_ONLY = '#!/bin/sh\necho \'{"type":"result","subtype":"success","is_error":false,"result":"ok"}\'\n'

POSITIVE_CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]
NEGATIVE_CHECKS = [*POSITIVE_CHECKS, openapi_checks.negative_data_rejection]


def _documented_operations() -> list[tuple[str, str]]:
    """The operations of the document the server serves, built in-process at collection time."""
    with tempfile.TemporaryDirectory(prefix="orch-fuzz-collect-") as tmp:
        app = create_app(
            Settings(data_dir=Path(tmp), database_url="sqlite:///:memory:", claude_bin="/bin/true")
        )
        try:
            doc = app.openapi()
        finally:
            app.state.services.github.close()
            app.state.services.db.dispose()
    methods = ("get", "post", "put", "patch", "delete")
    return [(m.upper(), path) for path, ops in doc["paths"].items() for m in ops if m in methods]


OPERATIONS = _documented_operations()
STREAMS = {("GET", "/api/changes")}  # always an SSE stream: see the module's docstring
FUZZED = [op for op in OPERATIONS if op not in STREAMS]
# The documented operations answered without the token (the dashboard's page and token route are not in
# the document); /metrics needs it.
PUBLIC = {("GET", "/api/health")}
# Open without the API token because GitHub cannot send it; its HMAC signature stands in for it (refused
# unsigned and wrongly signed in tests/e2e/test_github_intake.py, 404 while no secret is set).
SIGNED = {("POST", "/api/github/webhook")}

# Open bugs the fuzz must not report again, so that it keeps finding new ones: an answer it accepts or a
# problem integrity.py may list. Each entry gets a test at the end of this file that reproduces its bug,
# marked xfail(strict=True) until it is fixed; remove the entry with the fix. None is open now.
KNOWN_ANSWERS: list[tuple[str, Callable[[schemathesis.Case, Any], bool]]] = []
KNOWN_PROBLEMS: dict[str, str] = {}


def _known_answer(case: schemathesis.Case, response: Any) -> bool:
    return any(matches(case, response) for _, matches in KNOWN_ANSWERS)


def _over_the_body_limit(response: Any) -> bool:
    """A body over API_MAX_BODY_BYTES is refused with a documented 413 before it is read: the right
    refusal, though schemathesis' negative check does not count 413 among them."""
    body = response.request.body or b""
    return bool(response.status_code == 413 and len(body) > API_MAX_BODY_BYTES)


def _op_id(op: tuple[str, str]) -> str:
    return f"{op[0]} {op[1]}"


def _params(ops: list[tuple[str, str]]) -> list[Any]:
    return [pytest.param(op, id=_op_id(op)) for op in ops]


# --- servers ---------------------------------------------------------------------------------------


class Target:
    def __init__(self, server: Server, github: FakeGitHub) -> None:
        self.server = server
        self.github = github
        self.headers = server.headers
        self.schema = schemathesis.openapi.from_url(server.url + "/openapi.json", headers=self.headers)
        self.session = requests.Session()
        self.seeded = 0
        self.agent_id = ""


@pytest.fixture(scope="module")
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        repo = fake.add_repo(OWNER, "fuzz")
        fake.add_pull(repo, "feature")
        fake.add_repo(OWNER, "0")
        yield fake


def _start(tmp: Path, base_env: dict[str, str], github: FakeGitHub, **env: str) -> Server:
    script = tmp / "claude"
    script.write_text(RESULT_ONLY)
    script.chmod(0o755)
    server = Server(
        tmp / "data",
        {
            **base_env,
            "CLAUDE_BIN": str(script),
            "GITHUB_TOKEN": github.token,
            "GITHUB_OWNER": OWNER,
            "GITHUB_API_URL": github.api_url,
            "LOG_LEVEL": "WARNING",
            # fuzzed webhook URLs name random hosts: refused without a DNS lookup, never delivered to
            "WEBHOOK_HOSTS_ONLY": "true",
            **env,
        },
    )
    server.start()
    paused = server.client.post("/api/queue/settings", json={"key": "paused", "value": True})
    assert paused.status_code == 200, paused.text
    return server


def _target(
    tmp_path_factory: pytest.TempPathFactory,
    base_env: dict[str, str],
    github: FakeGitHub,
    name: str,
    **env: str,
) -> Iterator[Target]:
    server = _start(tmp_path_factory.mktemp(name), base_env, github, **env)
    target = Target(server, github)
    agent = server.spawn("seed agent")
    target.agent_id = agent["id"]
    server.wait_agent(agent["id"])
    try:
        yield target
    finally:
        target.session.close()
        server.close()


@pytest.fixture(scope="module")
def open_target(
    tmp_path_factory: pytest.TempPathFactory, base_env: dict[str, str], fake_github: FakeGitHub
) -> Iterator[Target]:
    """A server without ORCHESTRATOR_API_TOKEN: fuzzed with the token it generated."""
    yield from _target(tmp_path_factory, base_env, fake_github, "fuzz-open")


@pytest.fixture(scope="module")
def token_target(
    tmp_path_factory: pytest.TempPathFactory, base_env: dict[str, str], fake_github: FakeGitHub
) -> Iterator[Target]:
    yield from _target(
        tmp_path_factory,
        base_env,
        fake_github,
        "fuzz-token",
        ORCHESTRATOR_API_TOKEN=TOKEN,
    )


# --- fuzzing ---------------------------------------------------------------------------------------


def _seed_ids(target: Target, path: str) -> dict[str, Any]:
    """Existing rows for the path parameters of one operation: a queued task, its event, an agent."""
    target.seeded += 1
    client = target.server.client
    task_id = f"fz-{target.seeded}"
    assert client.post("/api/tasks", json={"id": task_id, "title": f"seeded {task_id}"}).status_code == 201
    assert client.post(f"/api/queue/add/{task_id}").status_code == 201
    event = {"id": f"ev-{target.seeded}", "type": "deploy.requested", "task_id": task_id}
    assert client.post("/api/events", json=event).status_code == 201
    known = {
        "agent_id": target.agent_id,
        "task_id": task_id,
        "event_id": event["id"],
        "repo": "fuzz",
        "pr_number": 1,
    }
    names = re.findall(r"{(\w+)}", path)
    return {name: known[name] for name in names if name in known}


def _each_case(strategy: Any, examples: int, check: Callable[[schemathesis.Case], None]) -> None:
    """Runs `check` on a bounded, repeatable series of generated cases (no shrinking: all are kept)."""

    @given(case=strategy)
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: schemathesis.Case) -> None:
        check(case)

    run()


def _fuzz(target: Target, op: tuple[str, str], examples: int = EXAMPLES) -> list[str]:
    operation = target.schema[op[1]][op[0]]
    failures: dict[tuple[str, str], str] = {}
    variants: list[tuple[GenerationMode, dict[str, Any] | None]] = [
        (GenerationMode.POSITIVE, None),
        (GenerationMode.NEGATIVE, None),
    ]
    if "{" in op[1]:
        seeded = _seed_ids(target, op[1])
        variants += [(GenerationMode.POSITIVE, seeded), (GenerationMode.NEGATIVE, seeded)]

    for mode, path_parameters in variants:
        checks = POSITIVE_CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS

        def check(case: schemathesis.Case, mode: GenerationMode = mode, checks: list[Any] = checks) -> None:
            response = case.call(base_url=target.server.url, session=target.session, headers=target.headers)
            if _known_answer(case, response) or _over_the_body_limit(response):
                return
            try:
                case.validate_response(response, checks=checks, headers=target.headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    key = (type(failure).__name__, str(response.status_code))
                    failures.setdefault(
                        key,
                        f"{mode.value}: {failure.title}: {case.as_curl_command(headers=target.headers)}\n"
                        f"    -> {response.status_code} {response.text[:300]}",
                    )

        # Unsatisfiable: nothing about this operation can be invalid (no parameters, no body)
        with contextlib.suppress(Unsatisfiable):
            _each_case(
                operation.as_strategy(generation_mode=mode, path_parameters=path_parameters), examples, check
            )
    return list(failures.values())


def _assert_clean(target: Target, op: tuple[str, str], before: list[str]) -> None:
    """Problems this operation's fuzz left (earlier ones are reported by the test that made them)."""
    new = [p for p in _unknown_problems(target) if p not in before]
    assert not new, f"after fuzzing {_op_id(op)}:\n" + "\n".join(new)
    assert target.server.client.get("/api/health").status_code == 200


def _unknown_problems(target: Target, *, allow_active: bool = True) -> list[str]:
    found = integrity.problems(target.server, allow_active=allow_active)
    return [p for p in found if p.split(":")[0] not in KNOWN_PROBLEMS]


@pytest.mark.xdist_group("fuzz-open")
@pytest.mark.parametrize("op", _params(FUZZED))
def test_fuzz_with_generated_token(open_target: Target, op: tuple[str, str]) -> None:
    before = _unknown_problems(open_target)
    failures = _fuzz(open_target, op)
    assert not failures, "\n".join(failures)
    _assert_clean(open_target, op, before)


@pytest.mark.xdist_group("fuzz-token")
@pytest.mark.parametrize("op", _params(FUZZED))
def test_fuzz_with_token(token_target: Target, op: tuple[str, str]) -> None:
    before = _unknown_problems(token_target)
    failures = _fuzz(token_target, op)
    assert not failures, "\n".join(failures)
    _assert_clean(token_target, op, before)


@pytest.mark.xdist_group("fuzz-token")
@pytest.mark.parametrize("op", _params([op for op in OPERATIONS if op not in PUBLIC | SIGNED]))
def test_every_operation_refuses_a_caller_without_the_token(
    token_target: Target, op: tuple[str, str]
) -> None:
    target = token_target
    before = integrity.counts(target.server)
    operation = target.schema[op[1]][op[0]]
    answers: list[int] = []
    failures: list[str] = []
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}):

        def check(case: schemathesis.Case, headers: dict[str, str] = headers) -> None:
            response = case.call(base_url=target.server.url, session=target.session, headers=headers)
            answers.append(response.status_code)
            if response.status_code not in (401, 404):
                failures.append(f"{case.as_curl_command(headers=headers)} -> {response.status_code}")
            try:
                case.validate_response(response, checks=POSITIVE_CHECKS, headers=headers)
            except FailureGroup as group:
                failures.append(f"{case.as_curl_command(headers=headers)}: {group.exceptions[0].title}")

        _each_case(operation.as_strategy(generation_mode=GenerationMode.POSITIVE), 5, check)
    assert not failures, "\n".join(failures[:10])
    assert 401 in answers
    assert integrity.counts(target.server) == before


@pytest.mark.xdist_group("fuzz-token")
def test_the_public_operations_answer_without_the_token(token_target: Target) -> None:
    assert set(OPERATIONS) >= PUBLIC | SIGNED
    for method, path in PUBLIC:
        response = token_target.session.request(method, token_target.server.url + path, timeout=10)
        assert response.status_code == 200, (method, path, response.status_code, response.text[:200])


@pytest.mark.xdist_group("fuzz-open")
def test_the_document_served_is_the_one_fuzzed(open_target: Target) -> None:
    served = open_target.server.client.get("/openapi.json").json()
    methods = ("get", "post", "put", "patch", "delete")
    operations = [(m.upper(), p) for p, ops in served["paths"].items() for m in ops if m in methods]
    assert sorted(operations) == sorted(OPERATIONS)


@pytest.mark.xdist_group("fuzz-open")
def test_after_the_fuzz_every_agent_ended_and_nothing_is_half_written(open_target: Target) -> None:
    integrity.wait_agents_ended(open_target.server)
    assert _unknown_problems(open_target, allow_active=False) == []
    assert open_target.server.client.get("/api/health").json()["status"] == "ok"


@pytest.mark.xdist_group("fuzz-token")
def test_after_the_fuzz_with_token_nothing_is_half_written(token_target: Target) -> None:
    integrity.wait_agents_ended(token_target.server)
    assert _unknown_problems(token_target, allow_active=False) == []


# --- bugs the fuzz found, one regression test each -------------------------------------------------

LARGEST = 2**63 - 1  # the largest integer a database column holds
HUGE = str(LARGEST + 1)
SSE = {"Accept": "text/event-stream"}


@pytest.mark.xdist_group("fuzz-open")
@pytest.mark.parametrize(
    ("path", "params", "headers", "field"),
    [
        ("/api/agents", {"offset": HUGE}, {}, "offset"),
        ("/api/tasks", {"offset": HUGE}, {}, "offset"),
        ("/api/events", {"offset": HUGE}, {}, "offset"),
        ("/api/events/pending", {"offset": HUGE}, {}, "offset"),
        ("/api/events/processed", {"offset": HUGE}, {}, "offset"),
        ("/api/agents/{agent}/logs", {"after": HUGE}, {}, "after"),
        ("/api/agents/{agent}/logs", {"after": HUGE}, SSE, "after"),
        ("/api/agents/{agent}/logs", {}, {**SSE, "Last-Event-ID": HUGE}, "Last-Event-ID"),
    ],
    ids=["agents", "tasks", "events", "pending", "processed", "logs", "logs-sse", "logs-last-event-id"],
)
def test_an_offset_or_cursor_past_the_largest_database_integer_is_refused_naming_it(
    open_target: Target, path: str, params: dict[str, str], headers: dict[str, str], field: str
) -> None:
    url = path.format(agent=open_target.agent_id)
    response = open_target.server.client.get(url, params=params, headers=headers, timeout=10)
    assert response.status_code == 422, response.text[:300]
    assert response.json()["detail"].startswith(f"{field}: "), response.text


@pytest.mark.xdist_group("fuzz-open")
@pytest.mark.parametrize("path", ["/api/agents", "/api/tasks", "/api/events", "/api/events/pending"])
def test_an_offset_at_the_largest_database_integer_is_served_an_empty_page(
    open_target: Target, path: str
) -> None:
    client = open_target.server.client
    total = client.get(path).json()["total"]
    page = client.get(path, params={"offset": LARGEST})
    assert page.status_code == 200, page.text[:300]
    assert page.json()["items"] == []
    assert page.json()["offset"] == LARGEST
    assert page.json()["total"] == total


@pytest.mark.xdist_group("fuzz-open")
def test_logs_after_the_largest_database_integer_are_an_empty_page_or_a_stream_that_only_ends(
    open_target: Target,
) -> None:
    client = open_target.server.client
    url = f"/api/agents/{open_target.agent_id}/logs"
    page = client.get(url, params={"after": LARGEST})
    assert page.status_code == 200, page.text[:300]
    assert (page.json()["items"], page.json()["next_after"], page.json()["has_more"]) == ([], LARGEST, False)
    for params, headers in (({"after": LARGEST}, SSE), ({}, {**SSE, "Last-Event-ID": str(LARGEST)})):
        with client.stream("GET", url, params=params, headers=headers, timeout=10) as response:
            assert response.status_code == 200, response.read()
            assert [event.event for event in events(response)] == ["end"]


@pytest.mark.parametrize("status", ["pending", "failed", "in_progress"])
def test_patching_a_queued_task_takes_it_out_of_the_queue(
    make_server: Callable[..., Server], tmp_path: Path, status: str
) -> None:
    script = tmp_path / "claude"
    script.write_text(RESULT_ONLY)
    script.chmod(0o755)
    server = make_server(CLAUDE_BIN=str(script))
    client = server.client
    assert client.post("/api/queue/settings", json={"key": "paused", "value": True}).status_code == 200
    assert client.post("/api/tasks", json={"id": "t1", "title": "queued"}).status_code == 201
    assert client.post("/api/queue/add/t1").status_code == 201

    patched = client.patch("/api/tasks/t1", json={"status": status})
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == status
    queue = client.get("/api/queue").json()
    assert [i["task_id"] for i in queue["items"] + queue["completed"]] == []
    assert integrity.problems(server) == []

    # a task queued behind it: once its agent has run, the processor has swept past where t1 stood
    assert client.post("/api/tasks", json={"id": "t2", "title": "behind"}).status_code == 201
    assert client.post("/api/queue/add/t2").status_code == 201
    assert client.post("/api/queue/settings", json={"key": "paused", "value": False}).status_code == 200
    deadline = time.monotonic() + 30
    while client.get("/api/tasks/t2").json()["status"] != "completed":
        assert time.monotonic() < deadline, client.get("/api/queue").json()
        time.sleep(0.1)

    task = client.get("/api/tasks/t1").json()
    assert (task["status"], task["agents"]) == (status, [])
    assert [a["task_id"] for a in client.get("/api/agents").json()["items"]] == ["t2"]
    queue = client.get("/api/queue").json()
    assert [i["task_id"] for i in queue["items"] + queue["completed"]] == ["t2"]
    integrity.wait_agents_ended(server)
    assert integrity.problems(server, allow_active=False) == []


@pytest.mark.xdist_group("fuzz-open")
def test_refused_authenticated_clone_url_is_documented(open_target: Target) -> None:
    _assert_documented(
        open_target, "/api/github/clone-url/{repo}", "/api/github/clone-url/fuzz?authenticated=true"
    )


@pytest.mark.xdist_group("fuzz-open")
@pytest.mark.parametrize(
    "github_status",
    [
        401,
        404,
        422,
        500,
        403,
        418,
    ],
)
def test_github_failures_are_answered_with_documented_codes(open_target: Target, github_status: int) -> None:
    open_target.github.fail_next(github_status, message="injected")
    _assert_documented(open_target, "/api/github/repo/{repo}", "/api/github/repo/fuzz")


def _assert_documented(target: Target, template: str, url: str) -> None:
    response = target.server.client.get(url)
    documented = target.server.client.get("/openapi.json").json()["paths"][template]["get"]["responses"]
    assert response.status_code != 200
    assert str(response.status_code) in documented, (response.status_code, response.text, sorted(documented))
