"""The PR watcher on a real store against the fake GitHub: each fact is written once, however often it
is read (polls, pokes, a second instance), and a new wait on the same commit is news again; every page of
a PR's check runs, statuses, reviews and review comments is read (GitHub's `Link: rel="next"`) up to a
cap: past it checks never pass on a partial read, and the newest reviews are the ones read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.clock import utc_now
from orchestrator.domain.types import TaskStatus
from orchestrator.forge.errors import ForgeFailed
from orchestrator.forge.github import GitHubClient
from orchestrator.forge.pull_state import MAX_PAGES, PullState
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
REPO = "acme/calc"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        repo = fake.add_repo("acme", "calc")
        fake.add_pull(repo, "task/t1", head_sha=SHA)
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


def _watcher(
    tmp_path: Path,
    db: Database,
    github: FakeGitHub,
    woken: list[int],
    pushed: Callable[[str, str, str], bool] | None = None,
) -> PRWatcher:
    settings = Settings(ORCHESTRATOR_DATA_DIR=tmp_path, CHECKS_APPEAR_SECONDS=0, CHECKS_TIMEOUT_SECONDS=600)
    forge = GitHubClient(github.api_url, github.token, "acme")
    _CLIENTS.append(forge)
    return PRWatcher(settings, TaskStore(db), EventStore(db), forge, lambda: woken.append(1), pushed=pushed)


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


def test_a_head_someone_else_pushed_is_one_event_naming_both_commits(
    tmp_path: Path, db: Database, github: FakeGitHub
) -> None:
    _waiting_task(db)
    github.pull(github._repos["acme/calc"], 1).head_sha = "b" * 40  # a person pushed to the PR's branch
    first, second = _watcher(tmp_path, db, github, []), _watcher(tmp_path, db, github, [])
    assert first.sweep() == 1
    assert first.sweep() == 0 and second.sweep() == 0
    assert _types(db) == ["pr.head.moved"]
    payload = _payload(db)
    assert (payload["head_sha"], payload["new_head_sha"], payload["waited_for"]) == (SHA, "b" * 40, "checks")
    assert not github.checks.asked, "no checks are read for a commit that is no longer the head"


def test_a_head_the_service_pushed_itself_is_not_news(
    tmp_path: Path, db: Database, github: FakeGitHub
) -> None:
    """GitHub may show the service's previous push for a moment after its new one."""
    _waiting_task(db)
    github.pull(github._repos["acme/calc"], 1).head_sha = "c" * 40
    asked: list[tuple[str, str, str]] = []

    def pushed(repo: str, branch: str, sha: str) -> bool:
        asked.append((repo, branch, sha))
        return True

    assert _watcher(tmp_path, db, github, [], pushed).sweep() == 1
    assert _types(db) == ["pr.checks.passed"]
    assert asked == [("calc", "task/t1", "c" * 40)]


def test_a_head_that_is_no_commit_id_never_reaches_git(
    tmp_path: Path, db: Database, github: FakeGitHub
) -> None:
    _waiting_task(db)
    github.pull(github._repos["acme/calc"], 1).head_sha = "--upload-pack=touch /tmp/x"
    asked: list[str] = []
    assert _watcher(tmp_path, db, github, [], lambda r, b, s: asked.append(s) or False).sweep() == 1
    assert asked == [] and "pr.head.moved" not in _types(db)


def _payload(db: Database) -> dict[str, object]:
    rows, _ = EventStore(db).page(statuses=None, type_=None, task_id="t1", limit=1, offset=0)
    return dict(rows[0]["payload"])


def test_a_failing_check_on_page_two_fails_the_commit(
    tmp_path: Path, db: Database, github: FakeGitHub
) -> None:
    github.max_per_page = 2
    runs = [run("lint", "success"), run("types", "success"), run("unit tests", "failure", "3 != 4")]
    github.checks.set_verdict(REPO, SHA, Verdict(runs=runs))
    _waiting_task(db)
    assert _watcher(tmp_path, db, github, []).sweep() == 1
    assert _types(db) == ["pr.checks.failed"]
    assert _payload(db)["failing"] == ["unit tests"]
    pages = [r.query.get("page", ["1"])[0] for r in github.requests_to(f"/commits/{SHA}/check-runs")]
    assert pages == ["1", "2"]


def test_a_failing_status_on_page_two_fails_the_commit(
    tmp_path: Path, db: Database, github: FakeGitHub
) -> None:
    github.max_per_page = 1
    statuses = [
        {"context": "ci/a", "state": "success", "description": "ok"},
        {"context": "ci/b", "state": "failure", "description": "red"},
    ]
    github.checks.set_verdict(REPO, SHA, Verdict(runs=[run("lint", "success")], statuses=statuses))
    _waiting_task(db)
    assert _watcher(tmp_path, db, github, []).sweep() == 1
    assert _payload(db)["failing"] == ["ci/b"]


def test_a_change_request_on_page_two_is_acted_on(tmp_path: Path, db: Database, github: FakeGitHub) -> None:
    github.max_per_page = 2
    github.checks.set_verdict(REPO, SHA, Verdict(runs=[run("unit", None)]))
    github.checks.add_review(REPO, 1, "bob", "COMMENTED", "looks fine so far")
    github.checks.add_review(REPO, 1, "carol", "APPROVED", "ok")
    github.checks.add_review(REPO, 1, "alice", "CHANGES_REQUESTED", "please name it plus")
    github.checks.add_comment(REPO, 1, "bob", "first")
    github.checks.add_comment(REPO, 1, "bob", "second")
    github.checks.add_comment(REPO, 1, "bob", "and document it")
    _waiting_task(db)
    assert _watcher(tmp_path, db, github, []).sweep() == 1
    assert _types(db) == ["pr.changes.requested"]
    reports = str(_payload(db)["reports"])
    assert "please name it plus" in reports and "and document it" in reports


def test_past_the_cap_checks_stay_pending_and_the_reads_stop(
    tmp_path: Path, db: Database, github: FakeGitHub
) -> None:
    github.max_per_page = 1
    runs = [run(f"check {i}", "success") for i in range(MAX_PAGES + 3)]
    github.checks.set_verdict(REPO, SHA, Verdict(runs=runs))
    _waiting_task(db)
    assert _watcher(tmp_path, db, github, []).sweep() == 0, "a partial read of passing checks is not a pass"
    assert _types(db) == []
    assert len(github.requests_to(f"/commits/{SHA}/check-runs")) == MAX_PAGES


def test_past_the_cap_the_newest_reviews_are_read(tmp_path: Path, db: Database, github: FakeGitHub) -> None:
    github.max_per_page = 1
    github.checks.set_verdict(REPO, SHA, Verdict(runs=[run("unit", None)]))
    for i in range(3 * MAX_PAGES):
        github.checks.add_review(REPO, 1, "drive-by", "COMMENTED", f"noise {i}", association="NONE")
    github.checks.add_review(REPO, 1, "alice", "CHANGES_REQUESTED", "the newest words")
    _waiting_task(db)
    assert _watcher(tmp_path, db, github, []).sweep() == 1
    assert "the newest words" in str(_payload(db)["reports"])
    assert len(github.requests_to("/pulls/1/reviews")) < 2 * MAX_PAGES


def test_past_the_cap_the_newest_pages_are_read_first_and_the_middle_never(
    tmp_path: Path, db: Database, github: FakeGitHub
) -> None:
    github.max_per_page = 1
    github.checks.set_verdict(REPO, SHA, Verdict(runs=[run("unit", None)]))
    total = 3 * MAX_PAGES + 1
    for i in range(total - 1):
        github.checks.add_review(REPO, 1, "drive-by", "COMMENTED", f"noise {i}", association="NONE")
    github.checks.add_review(REPO, 1, "alice", "CHANGES_REQUESTED", "the newest words")
    _waiting_task(db)
    assert _watcher(tmp_path, db, github, []).sweep() == 1
    assert "the newest words" in str(_payload(db)["reports"])
    pages = [int(r.query.get("page", ["1"])[0]) for r in github.requests_to("/pulls/1/reviews")]
    assert pages == [1, *range(total, total - MAX_PAGES + 1, -1)], pages


def test_past_the_cap_of_reviews_the_merge_waits(tmp_path: Path, db: Database, github: FakeGitHub) -> None:
    github.max_per_page = 1
    for i in range(MAX_PAGES - 1):
        github.checks.add_review(REPO, 1, "drive-by", "COMMENTED", f"noise {i}", association="NONE")
    _waiting_task(db)
    TaskStore(db).update("t1", {"waiting_for": "mergeable"}, None)
    github.checks.add_review(REPO, 1, "drive-by", "COMMENTED", "one more", association="NONE")
    assert _watcher(tmp_path, db, github, []).sweep() == 1, "all reviews read: ready to merge"
    assert _types(db) == ["pr.ready"]
    TaskStore(db).update("t1", {"waiting_since": utc_now() + "1"}, None)  # a new wait on the same commit
    github.checks.add_review(REPO, 1, "drive-by", "COMMENTED", "past the cap", association="NONE")
    assert _watcher(tmp_path, db, github, []).sweep() == 0, "an unread review may be a change request"
    assert _types(db) == ["pr.ready"]


@pytest.mark.parametrize("rel", ["next", "last"])
def test_a_page_link_to_another_origin_is_not_followed(github: FakeGitHub, rel: str) -> None:
    with FakeGitHub(token=github.token) as elsewhere:
        elsewhere_url = f"{elsewhere.api_url}/repos/acme/calc/pulls/1/reviews?page=2"
        ours = f"{github.api_url}/repos/acme/calc/pulls/1/reviews?page=2"
        links = {
            "next": f'<{elsewhere_url}>; rel="next"',
            "last": f'<{ours}>; rel="next", <{elsewhere_url}>; rel="last"',
        }

        def hostile(
            method: str, path: str, query: dict[str, list[str]], *_: object
        ) -> tuple[int, object, dict[str, str]] | None:
            if path != "/repos/acme/calc/pulls/1/reviews":
                return None
            return 200, [{"id": int(query.get("page", ["1"])[0]), "state": "COMMENTED"}], {"Link": links[rel]}

        github.routes.append(hostile)
        forge = GitHubClient(github.api_url, github.token, "acme")
        _CLIENTS.append(forge)
        with pytest.raises(ForgeFailed, match="leaves"):
            PullState(forge).reviews(REPO, 1)
        assert elsewhere.requests == [], "the token went nowhere else"
