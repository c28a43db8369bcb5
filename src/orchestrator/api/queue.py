from __future__ import annotations

from fastapi import APIRouter

from orchestrator.api.deps import QueueDep, ServicesDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.forge.sources import check_task_repos
from orchestrator.models import Cleared, QueueItem, QueueSettingsModel, QueueSettingUpdate, QueueStatus
from orchestrator.tasks.queue_control import QueueControl

router = APIRouter(prefix="/api/queue", tags=["queue"], responses=ERROR_RESPONSES)


def _status(queue: QueueControl) -> QueueStatus:
    active, done = queue.items()
    settings = queue.settings()
    return QueueStatus(
        items=[QueueItem.model_validate(i) for i in active],
        completed=[QueueItem.model_validate(i) for i in done],
        settings=QueueSettingsModel(**settings.as_dict()),
        pause_reason=settings.pause_reason,
        parked_until=settings.parked_until,
        processing=sum(1 for i in active if i["status"] == "processing"),
        queued=sum(1 for i in active if i["status"] == "queued"),
    )


@router.get("", response_model=QueueStatus)
def queue_status(queue: QueueDep) -> QueueStatus:
    return _status(queue)


@router.get("/settings", response_model=QueueSettingsModel)
def queue_settings(queue: QueueDep) -> QueueSettingsModel:
    return QueueSettingsModel(**queue.settings().as_dict())


@router.post("/settings", response_model=QueueSettingsModel)
def update_setting(body: QueueSettingUpdate, queue: QueueDep) -> QueueSettingsModel:
    return QueueSettingsModel(**queue.set_setting(body.key, body.value).as_dict())


@router.post("/add/{task_id}", response_model=QueueItem, status_code=201)
def add_task(task_id: str, queue: QueueDep, services: ServicesDep) -> QueueItem:
    task = services.task_store.get(task_id)
    if task is not None:  # an unknown repository is refused here, not found out when the task starts
        check_task_repos(services.settings, task["repos"] or ([task["repo"]] if task["repo"] else []))
    return QueueItem.model_validate(queue.add(task_id))


@router.delete("/{task_id}", response_model=QueueStatus)
def remove_task(task_id: str, queue: QueueDep) -> QueueStatus:
    queue.remove(task_id)
    return _status(queue)


@router.post("/clear", response_model=Cleared)
def clear_completed(queue: QueueDep) -> Cleared:
    return Cleared(removed=queue.clear_done())
