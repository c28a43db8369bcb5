from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from orchestrator.api.deps import ApprovalDep, ServicesDep, TasksDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.clock import utc_now
from orchestrator.domain.task_timeline import timeline
from orchestrator.domain.types import TaskStatus
from orchestrator.models import (
    MAX_SQL_INT,
    Rejection,
    Task,
    TaskCreate,
    TaskDetail,
    TaskPage,
    TaskUpdate,
)
from orchestrator.task_page_models import DiffPage, TaskTimeline
from orchestrator.tasks.branch_diff import TaskDiffs

router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=ERROR_RESPONSES)


@router.post("", response_model=Task, status_code=201)
def create_task(body: TaskCreate, tasks: TasksDep) -> Task:
    return Task.model_validate(tasks.create(body))


@router.get("", response_model=TaskPage)
def list_tasks(
    tasks: TasksDep,
    status: TaskStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_SQL_INT)] = 0,
) -> TaskPage:
    rows, total = tasks.page(status, limit=limit, offset=offset)
    return TaskPage(items=[Task.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{task_id}", response_model=TaskDetail)
def get_task(task_id: str, tasks: TasksDep) -> TaskDetail:
    return TaskDetail.model_validate(tasks.detail(task_id))


@router.get("/{task_id}/timeline", response_model=TaskTimeline)
def get_task_timeline(task_id: str, tasks: TasksDep) -> TaskTimeline:
    """The task's agents as spans on a time axis, its waits, and what its agents cost so far."""
    detail = tasks.detail(task_id)
    return TaskTimeline.model_validate(timeline(detail, detail["agents"], detail["events"], utc_now()))


@router.get("/{task_id}/diff", response_model=DiffPage)
def get_task_diff(
    task_id: str, services: ServicesDep, page: Annotated[int, Query(ge=1, le=100_000)] = 1
) -> DiffPage:
    """The diff of the task's branch against its base, from the service's mirror, a page of files at a
    time (404 while the task has no branch there)."""
    diffs = TaskDiffs(services.settings, services.task_store, services.publisher)
    return DiffPage.model_validate(diffs.page(task_id, page))


@router.patch("/{task_id}", response_model=Task)
def update_task(task_id: str, body: TaskUpdate, tasks: TasksDep) -> Task:
    return Task.model_validate(tasks.update(task_id, body))


@router.delete("/{task_id}", status_code=204, response_class=Response)
def delete_task(task_id: str, tasks: TasksDep) -> Response:
    tasks.delete(task_id)
    return Response(status_code=204)


@router.post("/{task_id}/approve", response_model=Task, status_code=202)
def approve_task(task_id: str, approvals: ApprovalDep) -> Task:
    """The task goes past the gate it waits at (`waiting_for`: approval:merge or approval:deploy)."""
    return Task.model_validate(approvals.approve(task_id))


@router.post("/{task_id}/reject", response_model=Task, status_code=202)
def reject_task(task_id: str, body: Rejection, approvals: ApprovalDep) -> Task:
    """The task ends failed at the gate it waits at, with the reason."""
    return Task.model_validate(approvals.reject(task_id, body.reason))
