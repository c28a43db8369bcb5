"""The direct runner: one coding agent per claimed item; the item ends when its agent does."""

from __future__ import annotations

import logging
import time

from orchestrator.agents.manager import AgentError, AgentTakenOver, SpawnRequest
from orchestrator.clock import iso_at
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.rate_limits import given_up, gives_up, resume_at
from orchestrator.domain.types import AgentStatus, AgentType
from orchestrator.errors import Unavailable
from orchestrator.prompts.context import task_context
from orchestrator.prompts.render import render
from orchestrator.queue.ports import AgentPort, QueuePort, Row, Spawner, TaskPort
from orchestrator.queue.runners.base import (
    Dead,
    Failed,
    Gone,
    Loop,
    Recovered,
    Refused,
    Started,
    StartResult,
    TaskWrites,
)
from orchestrator.store.queue import Claimed

log = logging.getLogger(__name__)


class DirectRunner(TaskWrites):
    def __init__(
        self,
        queue: QueuePort,
        tasks: TaskPort,
        agents: AgentPort,
        manager: Spawner,
        *,
        rate_limit_backoff_seconds: float = 60.0,
        rate_limit_max_per_task: int = 10,
    ) -> None:
        super().__init__(tasks, queue)
        self._agents = agents
        self._manager = manager
        self._backoff = rate_limit_backoff_seconds
        self._max_limits = rate_limit_max_per_task
        manager.on_end(self._agent_ended)

    async def start(self, item: Claimed) -> StartResult:
        task = self._tasks.get(item.task_id)
        if task is None:
            return Failed("the task was deleted")
        earlier = self._agents.last_of_task(item.task_id)
        resumed = (
            earlier
            if earlier is not None
            and earlier["status"] in (AgentStatus.RATE_LIMITED.value, AgentStatus.TIMEOUT.value)
            and bool(earlier["session_id"])
            else None
        )
        try:
            await self._manager.spawn(
                SpawnRequest(
                    agent_type=AgentType.CODING,
                    prompt=render(AgentType.CODING, task_context(task)),
                    task_id=item.task_id,
                    repo=task.get("repo"),
                    agent_id=item.agent_id,
                    queue_item=item.id,
                    resume_session=resumed["session_id"] if resumed else None,
                    config_dir=resumed["config_dir"] if resumed else None,
                    workspace=resumed["workspace"] if resumed else None,
                    retry_of=resumed["id"] if resumed else None,
                )
            )
        except AgentTakenOver:
            return Gone()
        except AgentError as exc:
            if isinstance(exc, Unavailable):
                return Refused(str(exc))
            return Failed(f"could not start its agent: {exc}")
        except Exception as exc:  # a bug in one item must not stop the queue for the rest
            log.exception("queue item %s of task %s: the spawn failed", item.id, item.task_id)
            return Failed(f"could not start its agent: {exc!r}")
        self.task_started(item.task_id, {})
        return Started()

    def _agent_ended(self, agent: Row) -> None:
        if not agent.get("task_id"):  # spawned on its own, not for a queue item: no read on the loop
            return
        item = self._queue.item_for_agent(agent["id"])
        if item is None:
            return
        if agent.get("end_reason") == EndReason.NEVER_STARTED:
            if self._queue.requeue(item["id"], item["instance_id"], agent.get("error") or "never started"):
                self.control.wake()
            return
        ok = agent["status"] == AgentStatus.COMPLETED.value
        error = (
            None if ok else f"agent {agent['id']} ended {agent['status']}: {agent.get('error') or ''}".strip()
        )
        if agent["status"] == AgentStatus.RATE_LIMITED.value:
            limits_met = self._agents.count_for_task(item["task_id"], AgentStatus.RATE_LIMITED)
            if not gives_up(limits_met, self._max_limits):
                self._park(item, agent, limits_met)
                return
            error = f"{given_up(limits_met, self._max_limits)}; {error}"[:2000]
        self.control.end_item(item["id"], item["task_id"], ok=ok, error=error)

    def _park(self, item: Row, agent: Row, attempts: int) -> None:
        """The item waits for the reset (or a backoff) and its next start resumes the same Claude
        session; other items go on starting (a limit is usually account-wide: those that meet it park
        the same way)."""
        until = resume_at(time.time(), agent["metadata"].get("rate_limit_reset_at"), self._backoff, attempts)
        retry_at = iso_at(until)
        if self._queue.park(item["id"], retry_at, agent.get("error") or "rate limited"):
            log.warning("task %s parked until %s: %s", item["task_id"], retry_at, agent.get("error"))
        self.control.wake()

    def recover(self, item: Row, dead: Dead) -> Recovered:
        agent = self._agents.get(item["agent_id"]) if item["agent_id"] else None
        if agent is None:
            if dead(item["instance_id"]) and self._queue.requeue(
                item["id"],
                item["instance_id"],
                "its instance stopped before the agent started",
                unless_started=True,
            ):
                return "requeued"
            return None
        if AgentStatus(agent["status"]).is_terminal:
            self._agent_ended(agent)
            return "ended"
        return "following"

    def take_over(self, dead: Dead) -> dict[str, int]:
        return {}

    def loops(self) -> list[Loop]:
        return []
