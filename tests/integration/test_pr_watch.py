"""The PR watcher on a real store against the fake GitHub: each fact is written once, however often it
is read (polls, pokes, a second instance), and a new wait on the same commit is news again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.clock import utc_now
from orchestrator.domain.types import TaskStatus
from orchestrator.forge.github import GitHubClient
from orchestrator.settings import Settings
from orchestrator.store.db import Database
from orchestrator.store.events import EventStore
from orchestrator.store.tasks import TaskStore
from orchestrator.workflow.pr_watch import PRWatcher
from tests.conftest import TEST_PG
from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_checks import Verdict, run
from tests.support.postgres import new_database

SHA = "a" * 40


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        repo = fake.add_repo("acme", "calc")
        fake.add_pull(repo, "task/t1")
        yield fake


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(new_database(TEST_PG) if TEST_PG else f"sqlite:///{tmp_path / 'w.db'}")
    database.migrate()
    yield database
    database.dispose()


_CLIENTS: list[GitHubClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def _watcher(tmp_path: Path, db: Database, github: FakeGitHub, woken: list[int]) -> PRWatcher:
    settings = Settings(ORCHESTRATOR_DATA_DIR=tmp_path, CHECKS_APPEAR_SECONDS=0, CHECKS_TIMEOUT_SECONDS=600)
    forge = GitHubClient(github.api_url, github.token, "acme")
    _CLIENTS.append(forge)
    return PRWatcher(settings, TaskStore(db), EventStore(db), forge, lambda: woken.append(1))


def _waiting_task(db: Database) -> None:
    tasks = TaskStore(db)
    tasks.create({"id": "t1", "title": "T", "repo": "calc", "repos": ["calc"]})
    tasks.move("t1", TaskStatus.QUEUED)
    tasks.move("t1", TaskStatus.IN_PROGRESS)
    fields = {"pr_number": 1, "head_sha": SHA, "waiting_for": "checks", "waiting_since": utc_now()}
    tasks.update("t1", fields, None)


def _types(db: Database) -> list[str]:
    rows, _ = EventStore(db).page(statuses=None, type_=None, task_id="t1", limit=50, offset=0)
    return sorted(r["type"] for r in rows)


def test_the_same_check_news_read_again_and_by_a_second_instance_is_one_event(
    tmp_path: Path, db: Database, github: FakeGitHub
) -> None:
    github.checks.plan("acme/calc", [Verdict(runs=[run("unit", None)])])
    _waiting_task(db)
    woken: list[int] = []
    first, second = _watcher(tmp_path, db, github, woken), _watcher(tmp_path, db, github, woken)
    assert first.sweep() == 0, "pending: nothing to tell"
    github.checks.set_verdict("acme/calc", SHA, Verdict(runs=[run("unit", "failure", "red")]))
    assert first.sweep() == 1
    assert first.sweep() == 0 and second.sweep() == 0 and second.sweep() == 0
    assert _types(db) == ["pr.checks.failed"]
    assert len(woken) == 1
    event = EventStore(db).page(statuses=None, type_=None, task_id="t1", limit=1, offset=0)[0][0]
    assert event["payload"]["failing"] == ["unit"] and event["payload"]["head_sha"] == SHA

    TaskStore(db).update("t1", {"waiting_since": utc_now() + "1"}, None)  # a new wait on the same commit
    assert second.sweep() == 1, "a fix-up that changed nothing is judged again"
    assert _types(db) == ["pr.checks.failed", "pr.checks.failed"]


def test_a_pr_a_person_closed_is_told_once(tmp_path: Path, db: Database, github: FakeGitHub) -> None:
    _waiting_task(db)
    pull = github.pull(github._repos["acme/calc"], 1)
    pull.state = "closed"
    watcher = _watcher(tmp_path, db, github, [])
    assert watcher.sweep() == 1
    assert _watcher(tmp_path, db, github, []).sweep() == 0
    assert _types(db) == ["pr.closed"]
