"""Task status moves."""

from orchestrator.domain.types import TaskStatus

_TASK_MOVES: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.QUEUED, TaskStatus.COMPLETED, TaskStatus.FAILED}),
    TaskStatus.QUEUED: frozenset(
        {TaskStatus.PENDING, TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS, TaskStatus.FAILED}
    ),
    TaskStatus.ASSIGNED: frozenset(
        {TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.QUEUED}
    ),
    TaskStatus.IN_PROGRESS: frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.QUEUED}),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset({TaskStatus.QUEUED, TaskStatus.PENDING}),
}


def task_may_move(current: TaskStatus, target: TaskStatus) -> bool:
    return current == target or target in _TASK_MOVES[current]


def task_sources_for(target: TaskStatus) -> frozenset[TaskStatus]:
    return frozenset(src for src, dests in _TASK_MOVES.items() if target in dests)
