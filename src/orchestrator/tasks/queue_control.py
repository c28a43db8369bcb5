"""What the API may do to the queue: put a task in or take it out, change a setting, clear what ended.
The queue's runner is woken whenever it may have new work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.domain.queue_rules import QueueSettings, parse_setting
from orchestrator.store.queue import QueueStore


class QueueControl:
    def __init__(self, queue: QueueStore, wake: Callable[[], None]) -> None:
        self._queue = queue
        self._wake = wake

    def add(self, task_id: str) -> dict[str, Any]:
        """The new queue item; NotFound for an unknown task, Conflict when it cannot be queued now."""
        item = self._queue.add(task_id)
        self._wake()
        return item

    def remove(self, task_id: str) -> None:
        """NotFound when the task is not queued, Conflict while its item is being processed."""
        self._queue.remove(task_id)

    def set_setting(self, key: str, value: object) -> QueueSettings:
        """Invalid for an unknown key or a value out of its range."""
        name, text = parse_setting(key, value)
        settings = self._queue.set_setting(name, text)
        self._wake()
        return settings

    def settings(self) -> QueueSettings:
        return self._queue.settings()

    def items(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The active items and the latest that ended."""
        return self._queue.items()

    def clear_done(self) -> int:
        return self._queue.clear_done()
