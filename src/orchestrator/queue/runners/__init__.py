"""Task runners: what happens to a task once the queue claims its item. One is chosen at composition
(`services.build`): the direct runner starts one coding agent per task, the workflow runner hands the
task to the event-driven plan → code → review → deploy → verify workflow."""

from orchestrator.queue.runners.base import (
    Failed,
    Gone,
    QueueControl,
    Recovered,
    Refused,
    Started,
    StartResult,
    TaskRunner,
)
from orchestrator.queue.runners.direct import DirectRunner
from orchestrator.queue.runners.workflow import WorkflowRunner

__all__ = [
    "DirectRunner",
    "Failed",
    "Gone",
    "QueueControl",
    "Recovered",
    "Refused",
    "StartResult",
    "Started",
    "TaskRunner",
    "WorkflowRunner",
]
