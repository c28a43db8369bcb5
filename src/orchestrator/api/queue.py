from __future__ import annotations

from fastapi import APIRouter, HTTPException

from orchestrator.api.deps import ServicesDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.domain.queue_rules import SettingError, parse_setting
from orchestrator.models import Cleared, QueueItem, QueueSettingsModel, QueueSettingUpdate, QueueStatus
from orchestrator.services import Services
from orchestrator.store.queue import QueueConflict, QueueNotFound

router = APIRouter(prefix="/api/queue", tags=["queue"], responses=ERROR_RESPONSES)


def _status(services: Services) -> QueueStatus:
    active, done = services.queue_store.items()
    settings = services.queue_store.settings()
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
def queue_status(services: ServicesDep) -> QueueStatus:
    return _status(services)


@router.get("/settings", response_model=QueueSettingsModel)
def queue_settings(services: ServicesDep) -> QueueSettingsModel:
    return QueueSettingsModel(**services.queue_store.settings().as_dict())


@router.post("/settings", response_model=QueueSettingsModel)
def update_setting(body: QueueSettingUpdate, services: ServicesDep) -> QueueSettingsModel:
    try:
        key, value = parse_setting(body.key, body.value)
    except SettingError as exc:
        raise HTTPException(422, str(exc)) from None
    settings = services.queue_store.set_setting(key, value)
    services.queue.wake()
    return QueueSettingsModel(**settings.as_dict())


@router.post("/add/{task_id}", response_model=QueueItem, status_code=201)
def add_task(task_id: str, services: ServicesDep) -> QueueItem:
    try:
        item = services.queue_store.add(task_id)
    except QueueNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except QueueConflict as exc:
        raise HTTPException(409, str(exc)) from None
    services.queue.wake()
    return QueueItem.model_validate(item)


@router.delete("/{task_id}", response_model=QueueStatus)
def remove_task(task_id: str, services: ServicesDep) -> QueueStatus:
    try:
        services.queue_store.remove(task_id)
    except QueueNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except QueueConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return _status(services)


@router.post("/clear", response_model=Cleared)
def clear_completed(services: ServicesDep) -> Cleared:
    return Cleared(removed=services.queue_store.clear_done())
