"""Issues in, status out, through the real server: labelled issues of the fake GitHub become tasks (by
polling and by signed webhook deliveries, once), real `claude` runs them, and the issue gets a comment;
forged and repeated deliveries change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from orchestrator.domain.github_news import body_key
from tests.support import fake_anthropic as fm
from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_issues import FakeIssues, issues_event, signed_delivery
from tests.support.server import Server

SECRET = "whsec-intake-0123456789"
LABEL = "agent"
WEBHOOK = "/api/github/webhook"


@pytest.fixture
def issues(github: FakeGitHub) -> FakeIssues:
    return FakeIssues(github)


@pytest.fixture
def intake_env(workflow_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in workflow_env.items() if k != "USE_MULTI_AGENT_EVENTS"}
    return {
        **env,
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GITHUB_INTAKE_LABEL": LABEL,
        "GITHUB_INTAKE_REPOS": "calc",
        "GITHUB_POLL_SECONDS": "0.3",
    }


def deliver(
    server: Server, event: str, payload: dict[str, Any], delivery: str | None = None
) -> httpx.Response:
    """As GitHub sends it: signed, and without the API token."""
    body, headers = signed_delivery(SECRET, event, payload, delivery)
    return httpx.post(server.url + WEBHOOK, content=body, headers=headers, timeout=30)


def tasks_of(server: Server) -> list[dict[str, Any]]:
    return list(server.client.get("/api/tasks", params={"limit": 500}).json()["items"])


def wait_for(what: str, check: Callable[[], Any], server: Server, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}\n{server.log()}"
        time.sleep(0.1)
    return found


def pause(server: Server) -> None:
    assert server.client.post("/api/queue/settings", json={"key": "paused", "value": True}).status_code == 200


def test_without_a_secret_the_endpoint_is_off(server: Server) -> None:
    body, headers = signed_delivery(SECRET, "ping", {"zen": "hi"})
    assert httpx.post(server.url + WEBHOOK, content=body, headers=headers).status_code == 404


def test_a_forged_delivery_is_refused_and_writes_nothing(
    make_server, intake_env: dict[str, str], issues: FakeIssues, github: FakeGitHub
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(**{**intake_env, "GITHUB_POLL_SECONDS": "3600"})
    pause(server)
    # the intake's one poll (at start) has listed the repository: the issue can come in only by a delivery
    wait_for("the first poll", lambda: issues.listings >= 1, server)
    issue = issues.add("acme/calc", "Do it", "body", labels=(LABEL,))
    payload = issues_event(issue, "labeled", github.api_url)
    body, headers = signed_delivery(SECRET, "issues", payload, "d-forged-1")
    for forged in (
        {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"},
        {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64},
        {**signed_delivery("not-the-secret", "issues", payload, "d-forged-1")[1]},
    ):
        answer = httpx.post(server.url + WEBHOOK, content=body, headers=forged)
        assert answer.status_code == 401, answer.text
    # only that one path and method is open without the API token, and only to a signed body
    assert httpx.get(server.url + WEBHOOK).status_code == 405
    assert httpx.post(server.url + WEBHOOK + "/", content=body, headers=headers).status_code == 401
    assert httpx.get(server.url + "/api/github/status").status_code == 401
    tampered = body.replace(b"Do it", b"rm -rf")
    assert httpx.post(server.url + WEBHOOK, content=tampered, headers=headers).status_code == 401
    assert tasks_of(server) == []
    # the forged attempts recorded nothing: the genuine delivery with that id is new, and acted on
    genuine = httpx.post(server.url + WEBHOOK, content=body, headers=headers)
    assert genuine.status_code == 200 and genuine.json()["result"].startswith("queued as task"), genuine.text
    assert [t["title"] for t in tasks_of(server)] == ["Do it"]


def test_a_redelivery_and_the_same_issue_by_polling_make_one_task(
    make_server, intake_env: dict[str, str], issues: FakeIssues, github: FakeGitHub
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(**intake_env)
    pause(server)
    issue = issues.add("acme/calc", "Add subtract", "Please add calc.sub", labels=(LABEL, "bug"))
    first = deliver(server, "issues", issues_event(issue, "labeled", github.api_url), "d-1")
    assert first.status_code == 200, first.text
    again = deliver(server, "issues", issues_event(issue, "labeled", github.api_url), "d-1")
    assert again.status_code == 200 and again.json()["result"] == "a delivery seen before: ignored"
    other = deliver(server, "issues", issues_event(issue, "edited", github.api_url), "d-2")
    assert other.json()["result"].startswith("already task"), other.text
    wait_for("polls answered 304", lambda: issues.not_modified >= 2, server)
    found = tasks_of(server)
    assert len(found) == 1, found
    task = found[0]
    assert task["title"] == "Add subtract" and task["repo"] == "acme/calc" and task["status"] == "queued"
    assert "Please add calc.sub" in task["description"]
    queue = server.client.get("/api/queue").json()
    assert [i["task_id"] for i in queue["items"]] == [task["id"]]
    # the listings after the first were conditional (an unchanged list is answered 304: no rate limit spent)
    listed = github.requests_to("/repos/acme/calc/issues", "GET")
    assert all(r.headers.get("if-none-match") for r in listed[1:])


def test_a_closed_issue_cancels_its_queued_task(
    make_server, intake_env: dict[str, str], issues: FakeIssues, github: FakeGitHub
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(**intake_env)
    pause(server)
    polled = issues.add("acme/calc", "By polling", labels=(LABEL,))
    hooked = issues.add("acme/calc", "By webhook", labels=(LABEL,))
    wait_for(
        "both queued", lambda: len([t for t in tasks_of(server) if t["status"] == "queued"]) == 2, server
    )

    issues.close(polled)
    with github._lock:
        hooked.labels = []  # a person removed the label: GitHub's API says so, and the delivery tells of it
    unlabelled = issues_event(hooked, "unlabeled", github.api_url)
    result = deliver(server, "issues", unlabelled).json()["result"]  # or the poll read it first
    assert result.endswith(("was closed or lost its label", "is failed: left as it is")), result

    def both_failed() -> list[dict[str, Any]]:
        found = tasks_of(server)
        return found if all(t["status"] == "failed" for t in found) else []

    for task in wait_for("both cancelled", both_failed, server):
        assert task["error"].startswith("cancelled: issue acme/calc#"), task
    assert server.client.get("/api/queue").json()["items"] == []
    time.sleep(1)
    assert issues.comments(polled) == [] and issues.comments(hooked) == []


def test_a_replayed_body_is_ignored_and_a_stale_closed_payload_cancels_nothing(
    make_server, intake_env: dict[str, str], issues: FakeIssues, github: FakeGitHub
) -> None:  # type: ignore[no-untyped-def]
    """The signature covers the body, not X-GitHub-Delivery: a captured delivery can come again under a new
    id. Its body is known (and ignored), and what any `issues` delivery says is never acted on: the issue
    is read from GitHub's API, where it is open and labelled, so a stale "closed" cancels nothing."""
    server = make_server(**{**intake_env, "GITHUB_POLL_SECONDS": "3600"})
    pause(server)
    issue = issues.add("acme/calc", "Keep me", labels=(LABEL,))
    opened = deliver(server, "issues", issues_event(issue, "labeled", github.api_url), "d-open")
    assert opened.json()["result"].startswith(("queued as task", "already task")), opened.text
    closed = issues_event(issue, "closed", github.api_url)
    closed["issue"].update(state="closed", labels=[])  # as it was sent once, before the issue was reopened
    body, headers = signed_delivery(SECRET, "issues", closed, "d-captured")
    first = httpx.post(server.url + WEBHOOK, content=body, headers=headers, timeout=30)
    assert first.status_code == 200 and first.json()["result"].startswith("already task"), first.text
    replayed = httpx.post(
        server.url + WEBHOOK, content=body, headers={**headers, "X-GitHub-Delivery": "d-replayed"}, timeout=30
    )
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["result"] == "a body delivered before under another delivery id: ignored"
    [task] = tasks_of(server)
    assert task["status"] == "queued" and task["error"] is None, task
    assert len(github.requests_to(f"/repos/acme/calc/issues/{issue.number}", "GET")) == 2, "read from the API"

    with github._lock:
        issue.labels = []  # now a person removes the label: the API says so, and a delivery tells of it
    unlabelled = deliver(server, "issues", issues_event(issue, "unlabeled", github.api_url), "d-unlabelled")
    assert unlabelled.json()["result"].endswith("was closed or lost its label"), unlabelled.text
    assert tasks_of(server)[0]["status"] == "failed"


def test_a_labelled_issue_becomes_a_task_that_ends_with_a_comment_on_the_issue(
    make_server, intake_env: dict[str, str], issues: FakeIssues, fake_model: fm.FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(**intake_env)
    marker = fake_model.scenario([fm.text("Done: nothing needed changing.")])
    issue = issues.add("acme/calc", "Check calc", f"Have a look. {marker}", labels=(LABEL,))
    issues.add("acme/calc", "Not for the agent", "no label")

    def ended() -> dict[str, Any] | None:
        found = [t for t in tasks_of(server) if t["status"] in ("completed", "failed")]
        return found[0] if found else None

    task = wait_for("the task ended", ended, server, timeout=120)
    assert task["status"] == "completed", task
    comments = wait_for("a comment", lambda: issues.comments(issue), server)
    assert len(comments) == 1
    assert comments[0].startswith(f"Task `{task['id']}` completed.") and "Cost: $" in comments[0]
    assert len(tasks_of(server)) == 1
    time.sleep(1)
    assert len(issues.comments(issue)) == 1


def _age_delivery(server: Server, delivery: str, hours: float) -> None:
    """Makes a recorded delivery look received `hours` ago (written directly, SQLite or PostgreSQL)."""
    from sqlalchemy import create_engine, text

    from orchestrator.clock import iso_at
    from orchestrator.store.db import driver_url

    engine = create_engine(driver_url(server.database_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE github_deliveries SET received_at = :at WHERE delivery_id = :id"),
                {"at": iso_at(time.time() - hours * 3600), "id": delivery},
            )
    finally:
        engine.dispose()


def test_deliveries_past_their_retention_are_pruned_and_a_redelivery_of_one_is_new_again(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(GITHUB_WEBHOOK_SECRET=SECRET, GITHUB_DELIVERY_RETENTION_HOURS="1")
    bodies = {d: {"action": "created", "starred": d} for d in ("d-old", "d-recent")}
    keys = {d: body_key(json.dumps(payload).encode()) for d, payload in bodies.items()}
    for delivery, payload in bodies.items():
        answer = deliver(server, "star", payload, delivery)
        assert answer.json()["result"] == "star: not an event the service acts on", answer.text
    for delivery, hours in (("d-old", 2), ("d-recent", 0.5)):
        _age_delivery(server, delivery, hours)
        _age_delivery(server, keys[delivery], hours)  # its body, kept beside it to know a replay
    server.stop()
    server.start()  # housekeeping runs soon after a start, then every 10 minutes

    def kept() -> set[str]:
        return {row[0] for row in server.query("SELECT delivery_id FROM github_deliveries")}

    wait_for("the old delivery pruned", lambda: "d-old" not in kept(), server, timeout=30)
    assert kept() == {"d-recent", keys["d-recent"]}, "the one within GITHUB_DELIVERY_RETENTION_HOURS stays"
    again = deliver(server, "star", bodies["d-recent"], "d-recent")
    assert again.json()["result"] == "a delivery seen before: ignored"
    pruned = deliver(server, "star", bodies["d-old"], "d-old")
    assert pruned.json()["result"] == "star: not an event the service acts on", "a pruned id is new again"
    assert kept() == {"d-old", "d-recent", *keys.values()}
