from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from orchestrator.api.deps import ServicesDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.domain.queue_rules import find_cycle
from orchestrator.domain.types import TaskStatus
from orchestrator.models import MAX_SQL_INT, Task, TaskCreate, TaskDetail, TaskPage, TaskUpdate
from orchestrator.services import Services
from orchestrator.store.tasks import TaskBusy, TaskRow

router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=ERROR_RESPONSES)


def _found(services: Services, task_id: str) -> TaskRow:
    row = services.task_store.get(task_id)
    if row is None:
        raise HTTPException(404, f"task {task_id!r} not found")
    return row


def _repos(repo: str | None, repos: list[str] | None) -> tuple[str | None, list[str]]:
    listed = list(dict.fromkeys(repos or []))
    primary = repo or (listed[0] if listed else None)
    if primary and primary not in listed:
        listed.insert(0, primary)
    return primary, listed


def _check_dependencies(services: Services, task_id: str, depends_on: list[str]) -> None:
    missing = services.task_store.missing([d for d in depends_on if d != task_id])
    if missing:
        raise HTTPException(422, f"depends_on: no task {', '.join(missing)}")
    graph = {**services.task_store.dependency_graph(), task_id: depends_on}
    cycle = find_cycle(graph, task_id)
    if cycle:
        raise HTTPException(422, f"depends_on: a cycle {' -> '.join(cycle)}")


@router.post("", response_model=Task, status_code=201)
def create_task(body: TaskCreate, services: ServicesDep) -> Task:
    repo, repos = _repos(body.repo, body.repos)
    task_id = body.id or f"task-{secrets.token_hex(4)}"
    depends_on = list(dict.fromkeys(body.depends_on))
    _check_dependencies(services, task_id, depends_on)
    row = services.task_store.create(
        {
            "id": task_id,
            "title": body.title,
            "description": body.description,
            "repo": repo,
            "repos": repos,
            "priority": body.priority,
            "depends_on": depends_on,
            "budget": body.budget.model_dump() if body.budget else None,
        }
    )
    if row is None:
        raise HTTPException(409, f"id: a task {task_id!r} exists already")
    return Task.model_validate(row)


@router.get("", response_model=TaskPage)
def list_tasks(
    services: ServicesDep,
    status: TaskStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_SQL_INT)] = 0,
) -> TaskPage:
    rows, total = services.task_store.page(status, limit=limit, offset=offset)
    return TaskPage(items=[Task.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{task_id}", response_model=TaskDetail)
def get_task(task_id: str, services: ServicesDep) -> TaskDetail:
    row = _found(services, task_id)
    return TaskDetail.model_validate({**row, **services.task_store.history(task_id)})


@router.patch("/{task_id}", response_model=Task)
def update_task(task_id: str, body: TaskUpdate, services: ServicesDep) -> Task:
    row = _found(services, task_id)
    fields = body.model_dump(exclude_unset=True, exclude={"status"})
    if fields.get("depends_on") is not None:
        fields["depends_on"] = list(dict.fromkeys(fields["depends_on"]))
        _check_dependencies(services, task_id, fields["depends_on"])
    if "repo" in fields or "repos" in fields:
        fields["repo"], fields["repos"] = _repos(
            fields.get("repo", row["repo"]), fields.get("repos", row["repos"])
        )
    for required in ("title", "priority"):
        if required in fields and fields[required] is None:
            raise HTTPException(422, f"{required}: may not be null")
    if body.status is not None and body.status == TaskStatus.QUEUED:
        raise HTTPException(422, "status: add the task to the queue with POST /api/queue/add/{task_id}")
    if not services.task_store.update(task_id, fields, body.status):
        raise HTTPException(409, f"status: task {task_id} is {row['status']} and cannot become {body.status}")
    return Task.model_validate(_found(services, task_id))


@router.delete("/{task_id}", status_code=204, response_class=Response)
def delete_task(task_id: str, services: ServicesDep) -> Response:
    _found(services, task_id)
    try:
        services.task_store.delete(task_id)
    except TaskBusy:
        raise HTTPException(409, f"task {task_id} has an agent at work: kill it first") from None
    return Response(status_code=204)
