"""The one place that says which status may follow which, for every kind of row that has a status, and
what each move sets off. `store/moves.py` is the one write that applies these tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from orchestrator.domain.events import EventStatus
from orchestrator.domain.types import (
    TERMINAL_AGENT_STATUSES,
    AgentStatus,
    DeliveryStatus,
    QueueItemStatus,
    TaskStatus,
)

S = TypeVar("S", bound=StrEnum)


class Kind(StrEnum):
    AGENT = "agent"
    TASK = "task"
    QUEUE_ITEM = "queue_item"
    EVENT = "event"
    WEBHOOK_DELIVERY = "webhook_delivery"


@dataclass(frozen=True)
class Effect:
    """What a move sets off besides the new status. `webhook`: the topic announced in the move's
    transaction; its payload holds the row's id under `subject` and each field named in `reports`
    (`status` is the new status, any other name the value the move writes to that column)."""

    webhook: str | None = None
    reports: tuple[str, ...] = ()


NOTHING = Effect()


@dataclass(frozen=True)
class Lifecycle(Generic[S]):
    kind: Kind
    statuses: type[S]
    initial: S
    moves: Mapping[tuple[S, S], Effect]
    subject: str
    """The payload key of the row's id in the webhooks its moves announce."""
    terminal: frozenset[S] = field(init=False)

    def __post_init__(self) -> None:
        leaving = {src for src, dst in self.moves if src != dst}
        object.__setattr__(self, "terminal", frozenset(s for s in self.statuses if s not in leaving))

    def may_move(self, current: S, target: S) -> bool:
        return (current, target) in self.moves

    def sources_for(self, target: S) -> frozenset[S]:
        """Statuses from which `target` may be reached: the guard of a conditional UPDATE."""
        return frozenset(src for src, dst in self.moves if dst == target)

    def effect(self, current: S, target: S) -> Effect:
        """What the move sets off; KeyError when the table does not allow it."""
        return self.moves[(current, target)]

    def parse(self, raw: str) -> S | None:
        try:
            return self.statuses(raw)
        except ValueError:
            return None


def _table(
    pairs: Iterable[tuple[S, Iterable[S]]], effect_of: Mapping[S, Effect] | None = None
) -> dict[tuple[S, S], Effect]:
    effects = effect_of or {}
    return {(src, dst): effects.get(dst, NOTHING) for src, dsts in pairs for dst in dsts}


_AGENT_ENDS = tuple(sorted(TERMINAL_AGENT_STATUSES))

AGENTS: Lifecycle[AgentStatus] = Lifecycle(
    kind=Kind.AGENT,
    statuses=AgentStatus,
    initial=AgentStatus.STARTING,
    moves=_table(
        [
            (
                AgentStatus.STARTING,
                (
                    AgentStatus.RUNNING,
                    AgentStatus.FAILED,
                    AgentStatus.TIMEOUT,
                    AgentStatus.KILLED,
                    AgentStatus.RATE_LIMITED,
                ),
            ),
            (AgentStatus.RUNNING, _AGENT_ENDS),
        ],
        {end: Effect(f"agent.{end.value}", ("status", "error")) for end in _AGENT_ENDS},
    ),
    subject="agent_id",
)

_TASK_ENDS = {
    TaskStatus.COMPLETED: Effect("task.completed", ("error",)),
    TaskStatus.FAILED: Effect("task.failed", ("error",)),
    TaskStatus.AWAITING_APPROVAL: Effect("task.awaiting_approval", ("waiting_for",)),
}

# A task may also "move" to the status it has (a no-op with its fields written, announcing nothing).
TASKS: Lifecycle[TaskStatus] = Lifecycle(
    kind=Kind.TASK,
    statuses=TaskStatus,
    initial=TaskStatus.PENDING,
    moves={
        **_table(
            [
                (TaskStatus.PENDING, (TaskStatus.QUEUED, TaskStatus.COMPLETED, TaskStatus.FAILED)),
                (
                    TaskStatus.QUEUED,
                    (TaskStatus.PENDING, TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS, TaskStatus.FAILED),
                ),
                (
                    TaskStatus.ASSIGNED,
                    (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.QUEUED),
                ),
                (
                    TaskStatus.IN_PROGRESS,
                    (
                        TaskStatus.COMPLETED,
                        TaskStatus.FAILED,
                        TaskStatus.QUEUED,
                        TaskStatus.AWAITING_APPROVAL,
                    ),
                ),
                # a person's answer at an approval gate (the workflow moves it, never the API)
                (
                    TaskStatus.AWAITING_APPROVAL,
                    (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.QUEUED),
                ),
                (TaskStatus.FAILED, (TaskStatus.QUEUED, TaskStatus.PENDING)),
            ],
            _TASK_ENDS,
        ),
        **{(s, s): NOTHING for s in TaskStatus},
    },
    subject="task_id",
)

QUEUE_ITEMS: Lifecycle[QueueItemStatus] = Lifecycle(
    kind=Kind.QUEUE_ITEM,
    statuses=QueueItemStatus,
    initial=QueueItemStatus.QUEUED,
    moves=_table(
        [
            (QueueItemStatus.QUEUED, (QueueItemStatus.PROCESSING,)),
            (
                QueueItemStatus.PROCESSING,
                (QueueItemStatus.COMPLETED, QueueItemStatus.FAILED, QueueItemStatus.QUEUED),
            ),
        ]
    ),
    subject="item_id",
)

# Failed events may still be marked processed by hand (POST /api/events/{id}/processed).
EVENTS: Lifecycle[EventStatus] = Lifecycle(
    kind=Kind.EVENT,
    statuses=EventStatus,
    initial=EventStatus.PENDING,
    moves=_table(
        [
            (EventStatus.PENDING, (EventStatus.PROCESSING, EventStatus.PROCESSED)),
            (EventStatus.PROCESSING, (EventStatus.PENDING, EventStatus.PROCESSED, EventStatus.FAILED)),
            (EventStatus.FAILED, (EventStatus.PROCESSED,)),
        ]
    ),
    subject="event_id",
)

# A delivery that failed with retries left stays pending for its next attempt.
WEBHOOK_DELIVERIES: Lifecycle[DeliveryStatus] = Lifecycle(
    kind=Kind.WEBHOOK_DELIVERY,
    statuses=DeliveryStatus,
    initial=DeliveryStatus.PENDING,
    moves=_table(
        [
            (
                DeliveryStatus.PENDING,
                (DeliveryStatus.PENDING, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED),
            ),
        ]
    ),
    subject="delivery_id",
)
