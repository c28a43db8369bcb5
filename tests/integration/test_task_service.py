"""The rules for tasks asked for through the API, on a real SQLite store: dependencies all known and
without a cycle, which fields may change, which status moves the API may ask for, when a task may go."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from orchestrator.api.errors import status_of
from orchestrator.domain.types import TaskStatus
from orchestrator.errors import Conflict, Invalid, NotFound
from orchestrator.models import TaskCreate, TaskUpdate
from orchestrator.store.db import Database
from orchestrator.store.queue import QueueStore
from orchestrator.store.tasks import TaskStore
from orchestrator.tasks.service import TaskService, with_primary

_ids = itertools.count()


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    database.migrate()
    return database


@pytest.fixture
def tasks(db: Database) -> TaskService:
    return TaskService(TaskStore(db))


def _new(task_id: str, *depends_on: str) -> TaskCreate:
    return TaskCreate(id=task_id, title=task_id, depends_on=list(depends_on))


def test_a_dependency_on_an_unknown_task_is_refused_and_nothing_is_stored(tasks: TaskService) -> None:
    tasks.create(_new("a"))
    with pytest.raises(Invalid) as caught:
        tasks.create(_new("b", "a", "ghost", "phantom"))
    assert caught.value.field == "depends_on"
    assert str(caught.value) == "depends_on: no task ghost, phantom"
    assert status_of(caught.value) == 422
    with pytest.raises(NotFound):
        tasks.get("b")


def test_a_change_that_closes_a_cycle_is_refused_with_its_path(tasks: TaskService) -> None:
    tasks.create(_new("a"))
    tasks.create(_new("b", "a"))
    tasks.create(_new("c", "b"))
    with pytest.raises(Invalid, match=r"^depends_on: a cycle a -> c -> b -> a$"):
        tasks.update("a", TaskUpdate(depends_on=["c"]))
    assert tasks.get("a")["depends_on"] == []


def test_a_task_depending_on_itself_is_a_cycle(tasks: TaskService) -> None:
    with pytest.raises(Invalid, match="a cycle solo -> solo"):
        tasks.create(_new("solo", "solo"))


def test_dependencies_are_kept_once_in_their_order(tasks: TaskService) -> None:
    tasks.create(_new("a"))
    tasks.create(_new("b"))
    row = tasks.create(_new("c", "b", "a", "b"))
    assert row["depends_on"] == ["b", "a"]


def test_an_id_in_use_is_a_conflict(tasks: TaskService) -> None:
    tasks.create(_new("a"))
    with pytest.raises(Conflict, match="id: a task 'a' exists already"):
        tasks.create(_new("a"))


def test_a_task_without_an_id_gets_one(tasks: TaskService) -> None:
    row = tasks.create(TaskCreate(title="anonymous"))
    assert row["id"].startswith("task-") and tasks.get(row["id"])["title"] == "anonymous"


def test_the_primary_repository_leads_the_list() -> None:
    assert with_primary(None, ["x", "y", "x"]) == ("x", ["x", "y"])
    assert with_primary("z", ["x"]) == ("z", ["z", "x"])
    assert with_primary(None, None) == (None, [])


def test_changing_the_repositories_keeps_the_primary_in_the_list(tasks: TaskService) -> None:
    tasks.create(TaskCreate(id="a", title="a", repo="one"))
    row = tasks.update("a", TaskUpdate(repos=["two"]))
    assert (row["repo"], row["repos"]) == ("one", ["one", "two"])


def test_required_fields_may_not_be_cleared(tasks: TaskService) -> None:
    tasks.create(_new("a"))
    with pytest.raises(Invalid, match=r"^title: may not be null$"):
        tasks.update("a", TaskUpdate.model_validate({"title": None}))
    with pytest.raises(Invalid, match=r"^priority: may not be null$"):
        tasks.update("a", TaskUpdate.model_validate({"priority": None}))


def test_the_api_cannot_queue_a_task_by_its_status(tasks: TaskService) -> None:
    tasks.create(_new("a"))
    with pytest.raises(Invalid, match="POST /api/queue/add"):
        tasks.update("a", TaskUpdate(status=TaskStatus.QUEUED))
    assert tasks.get("a")["status"] == TaskStatus.PENDING


def test_a_status_move_the_lifecycle_refuses_is_a_conflict(tasks: TaskService) -> None:
    tasks.create(_new("a"))
    assert tasks.update("a", TaskUpdate(status=TaskStatus.FAILED))["status"] == TaskStatus.FAILED
    with pytest.raises(Conflict, match="task a is failed and cannot become"):
        tasks.update("a", TaskUpdate(status=TaskStatus.IN_PROGRESS))


def test_an_unknown_task_is_not_found_everywhere(tasks: TaskService) -> None:
    with pytest.raises(NotFound, match="task 'ghost' not found"):
        tasks.detail("ghost")
    with pytest.raises(NotFound):
        tasks.update("ghost", TaskUpdate(title="x"))
    with pytest.raises(NotFound):
        tasks.delete("ghost")


def test_a_task_being_processed_cannot_be_deleted(db: Database, tasks: TaskService) -> None:
    tasks.create(_new("a"))
    queue = QueueStore(db)
    queue.add("a")
    assert queue.claim_next("me", lambda: f"coding-{next(_ids):08x}") is not None
    with pytest.raises(Conflict, match="task a has an agent at work: kill it first") as caught:
        tasks.delete("a")
    assert status_of(caught.value) == 409
    assert tasks.get("a")["id"] == "a"


def test_a_deleted_task_is_gone(tasks: TaskService) -> None:
    tasks.create(_new("a"))
    tasks.delete("a")
    with pytest.raises(NotFound):
        tasks.get("a")
