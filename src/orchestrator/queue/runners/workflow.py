"""The workflow runner: a claimed item becomes a `task.assigned` event for the event-driven workflow,
and the item ends when the workflow ends its task."""

from __future__ import annotations

from orchestrator.domain.events import EventType
from orchestrator.domain.types import TaskStatus
from orchestrator.queue.ports import EventPort, QueuePort, Row, Spawner, TaskPort
from orchestrator.queue.runners.base import Dead, Loop, Recovered, Started, StartResult, TaskWrites
from orchestrator.store.queue import Claimed
from orchestrator.workflow.processor import EventProcessor
from orchestrator.workflow.service import Workflow

_ENDED = (TaskStatus.COMPLETED, TaskStatus.FAILED)


class WorkflowRunner(TaskWrites):
    def __init__(
        self,
        queue: QueuePort,
        tasks: TaskPort,
        events: EventPort,
        processor: EventProcessor,
        manager: Spawner,
    ) -> None:
        super().__init__(tasks, queue)
        self._events = events
        self._processor = processor
        manager.on_end(self._agent_ended)

    @property
    def _workflow(self) -> Workflow:
        if self._processor.workflow is None:
            raise RuntimeError("the event processor has no workflow")
        return self._processor.workflow

    async def start(self, item: Claimed) -> StartResult:
        self._events.create(
            f"{item.task_id}.assigned.{item.id}", EventType.TASK_ASSIGNED.value, item.task_id, None, {}
        )
        self.task_started(item.task_id, {})
        self._processor.wake()
        return Started()

    def _agent_ended(self, agent: Row) -> None:
        self._workflow.agent_ended(agent)

    def recover(self, item: Row, dead: Dead) -> Recovered:
        task = self._tasks.get(item["task_id"])
        if task is not None and task["status"] not in _ENDED:
            return "following"
        ok = task is not None and task["status"] == TaskStatus.COMPLETED
        self.control.end_item(
            item["id"], item["task_id"], ok=ok, error=None if ok else (task or {}).get("error")
        )
        return "ended"

    def take_over(self, dead: Dead) -> dict[str, int]:
        return {"events": self._processor.recover(dead), "unreported": self._workflow.unreported_agents()}

    def loops(self) -> list[Loop]:
        return [("event-processor", self._processor.run)]
