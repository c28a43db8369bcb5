"""The issue intake on a real SQLite store and the fake GitHub over loopback: tasks from listed issues,
conditional listings, rate limits waited out, and the comments on the issue, each once."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.domain.github_news import IssueNews
from orchestrator.domain.redact import Redactor
from orchestrator.domain.types import TaskStatus
from orchestrator.forge.github import GitHubClient
from orchestrator.forge.issues import Issues
from orchestrator.intake.issues import IssueIntake
from orchestrator.store.db import Database, StoreError
from orchestrator.store.github_intake import IntakeStore
from orchestrator.store.queue import QueueStore
from orchestrator.store.tasks import TaskStore
from orchestrator.tasks.queue_control import QueueControl
from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_issues import FakeIssues
from tests.support.postgres import new_database

LABEL = "agent"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repo("acme", "calc")
        yield fake


@pytest.fixture
def issues(github: FakeGitHub) -> FakeIssues:
    return FakeIssues(github)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgresql":
        server = os.environ.get("ORCHESTRATOR_TEST_PG")
        if not server:
            pytest.skip("ORCHESTRATOR_TEST_PG is not set")
        database = Database(new_database(server))
    else:
        database = Database(f"sqlite:///{tmp_path / 't.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def client(github: FakeGitHub) -> Iterator[GitHubClient]:
    with GitHubClient(github.api_url, github.token, "acme", sleep=lambda s: None) as gh:
        yield gh


def intake(db: Database, client: GitHubClient) -> IssueIntake:
    return IssueIntake(
        label=LABEL,
        repos=["acme/calc"],
        poll_seconds=0.0001,
        store=IntakeStore(db),
        tasks=TaskStore(db),
        queue=QueueControl(QueueStore(db), lambda: None),
        issues=Issues(client),
        redact=Redactor([FakeGitHub().token]),
    )


def test_polls_make_one_queued_task_per_labelled_issue_and_ask_conditionally(
    db: Database, client: GitHubClient, issues: FakeIssues, github: FakeGitHub
) -> None:
    taken = issues.add("acme/calc", "One", "do one", labels=(LABEL,))
    issues.add("acme/calc", "Two", labels=("other",))
    poller = intake(db, client)
    for _ in range(3):
        poller._next_poll = 0
        poller.poll()
    tasks = TaskStore(db)
    task = tasks.get("gh-acme.calc-1")
    assert task is not None and task["status"] == TaskStatus.QUEUED and task["title"] == "One"
    assert tasks.get("gh-acme.calc-2") is None
    assert issues.not_modified == 2
    assert IntakeStore(db).issue_task("acme/calc", taken.number) is not None


def test_a_secondary_rate_limit_is_waited_out(
    db: Database, client: GitHubClient, issues: FakeIssues, github: FakeGitHub
) -> None:
    issues.add("acme/calc", "One", labels=(LABEL,))
    github.rate_limit_next(times=2, retry_after=1)
    intake(db, client).poll()
    assert TaskStore(db).get("gh-acme.calc-1") is not None
    assert issues.listings == 1


def test_the_issue_hears_of_the_pr_and_of_the_end_once_each(
    db: Database, client: GitHubClient, issues: FakeIssues, github: FakeGitHub
) -> None:
    issue = issues.add("acme/calc", "One", labels=(LABEL,))
    poller = intake(db, client)
    poller.poll()
    tasks = TaskStore(db)
    url = "https://github.com/acme/calc/pull/9"
    tasks.record_pr("gh-acme.calc-1", {"pr_number": 9, "pr_url": url}, created=True)
    assert poller.report() == 1
    assert poller.report() == 0
    assert issues.comments(issue) == [f"Task `gh-acme.calc-1` opened a pull request for this issue: {url}"]

    QueueControl(QueueStore(db), lambda: None).remove("gh-acme.calc-1")
    github.fail_next(502)
    tasks.move("gh-acme.calc-1", TaskStatus.FAILED, error=f"boom with {github.token}")
    assert poller.report() == 0  # GitHub failed: the comment is tried again next round
    assert poller.report() == 1
    assert poller.report() == 0
    end = issues.comments(issue)[1]
    assert end.startswith("Task `gh-acme.calc-1` failed.") and url in end and "Cost: $0.00" in end
    assert github.token not in end
    assert len(issues.comments(issue)) == 2


def test_a_delivery_is_taken_once(db: Database) -> None:
    store = IntakeStore(db)
    assert store.take_delivery("d-1", "issues")
    assert not store.take_delivery("d-1", "issues")
    store.forget_delivery("d-1")
    assert store.take_delivery("d-1", "issues")
    assert store.deliveries() == 1


def test_repositories_whose_names_read_alike_in_a_task_id_get_a_task_each(
    db: Database, client: GitHubClient
) -> None:
    taker = IssueIntake(
        label=LABEL,
        repos=["acme/my.calc", "acme/my-calc"],
        poll_seconds=60,
        store=IntakeStore(db),
        tasks=TaskStore(db),
        queue=QueueControl(QueueStore(db), lambda: None),
        issues=Issues(client),
        redact=Redactor(),
    )

    def news(repo: str, is_open: bool) -> IssueNews:
        return IssueNews(repo, 1, f"issue of {repo}", "", is_open, frozenset({LABEL}), False)

    taker.take(news("acme/my.calc", True))
    taker.take(news("acme/my-calc", True))
    store, tasks = IntakeStore(db), TaskStore(db)
    first, second = store.issue_task("acme/my.calc", 1), store.issue_task("acme/my-calc", 1)
    assert first is not None and second is not None and first.task_id != second.task_id
    other = tasks.get(second.task_id)
    assert other is not None and other["repo"] == "acme/my-calc" and other["title"] == "issue of acme/my-calc"

    taker.take(news("acme/my-calc", False))  # closed by its author: only its own task is cancelled
    kept = tasks.get(first.task_id)
    assert kept is not None and kept["status"] == TaskStatus.QUEUED
    cancelled = tasks.get(second.task_id)
    assert cancelled is not None and cancelled["status"] == TaskStatus.FAILED


def test_a_delivery_that_could_not_be_stored_is_not_taken_for_a_redelivery(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    database.migrate()
    conn = sqlite3.connect(tmp_path / "t.db")  # a write that fails for another reason than a duplicate
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON github_deliveries BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    conn.commit()
    conn.close()
    try:
        with pytest.raises(StoreError):
            IntakeStore(database).take_delivery("d-1", "issues")
    finally:
        database.dispose()
