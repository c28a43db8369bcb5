"""Event types and what each one sets in motion."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orchestrator.domain.types import AgentType


class EventType(StrEnum):
    TASK_ASSIGNED = "task.assigned"
    TASK_PLAN_CREATED = "task.plan.created"
    PR_CREATED = "pr.created"
    PR_UPDATED = "pr.updated"
    PR_CHANGES_REQUESTED = "pr.changes.requested"
    PR_MERGED = "pr.merged"
    DEPLOY_REQUESTED = "deploy.requested"
    DEPLOY_COMPLETED = "deploy.completed"
    VERIFY_PASSED = "verify.passed"
    VERIFY_FAILED = "verify.failed"
    AUDIT_REQUESTED = "audit.requested"
    AUDIT_COMPLETED = "audit.completed"
    AGENT_FINISHED = "agent.finished"
    PR_CHECKS_PASSED = "pr.checks.passed"
    PR_CHECKS_FAILED = "pr.checks.failed"
    PR_WAIT_TIMED_OUT = "pr.wait.timed_out"
    PR_READY = "pr.ready"
    PR_CONFLICT = "pr.conflict"
    PR_CLOSED = "pr.closed"
    TASK_APPROVED = "task.approved"
    TASK_REJECTED = "task.rejected"
    PR_HEAD_MOVED = "pr.head.moved"


# Facts only the service states: an agent's end, a person's answer at a gate (its own route), and what the
# PR watcher read on GitHub (posted, pr.ready would merge past the checks, the reviewer and the merge gate).
INTERNAL_EVENT_TYPES = frozenset(
    {
        EventType.AGENT_FINISHED,
        EventType.TASK_APPROVED,
        EventType.TASK_REJECTED,
        EventType.PR_CHECKS_PASSED,
        EventType.PR_CHECKS_FAILED,
        EventType.PR_WAIT_TIMED_OUT,
        EventType.PR_READY,
        EventType.PR_CONFLICT,
        EventType.PR_CLOSED,
        EventType.PR_HEAD_MOVED,
    }
)


class EventStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"


@dataclass(frozen=True)
class SpawnAgent:
    agent_type: AgentType
    fixup: bool = False


@dataclass(frozen=True)
class CompleteTask:
    pass


@dataclass(frozen=True)
class CreateBugTask:
    pass


@dataclass(frozen=True)
class CreateFindingTasks:
    pass


@dataclass(frozen=True)
class ReadOutcome:
    pass


@dataclass(frozen=True)
class AwaitChecks:
    """The PR's head waits for its checks (the PR watcher reports the verdict as an event)."""


@dataclass(frozen=True)
class Merge:
    """GitHub says the PR can merge: merge it, then deploy (or wait for the deploy gate)."""


@dataclass(frozen=True)
class PullClosed:
    """A person merged or closed the PR."""


@dataclass(frozen=True)
class FollowHead:
    """Someone else pushed to the PR's branch: its new head is taken into the mirror and the task's
    checkout, and waits for its checks and a new review (what was approved is not what would merge)."""


@dataclass(frozen=True)
class FailTask:
    """The task ends failed with the event's `reason`."""


@dataclass(frozen=True)
class Approval:
    """A person approved or rejected what the task waits for."""

    approved: bool


Reaction = (
    SpawnAgent
    | CompleteTask
    | CreateBugTask
    | CreateFindingTasks
    | ReadOutcome
    | AwaitChecks
    | Merge
    | PullClosed
    | FollowHead
    | FailTask
    | Approval
)

ROUTES: dict[EventType, Reaction] = {
    EventType.TASK_ASSIGNED: SpawnAgent(AgentType.STARTER),
    EventType.TASK_PLAN_CREATED: SpawnAgent(AgentType.CODING),
    EventType.PR_CREATED: AwaitChecks(),
    EventType.PR_UPDATED: AwaitChecks(),
    EventType.PR_CHECKS_PASSED: SpawnAgent(AgentType.REVIEWER),
    EventType.PR_CHECKS_FAILED: SpawnAgent(AgentType.CODING, fixup=True),
    EventType.PR_CONFLICT: SpawnAgent(AgentType.CODING, fixup=True),
    EventType.PR_WAIT_TIMED_OUT: FailTask(),
    EventType.PR_READY: Merge(),
    EventType.PR_CLOSED: PullClosed(),
    EventType.PR_HEAD_MOVED: FollowHead(),
    EventType.TASK_APPROVED: Approval(approved=True),
    EventType.TASK_REJECTED: Approval(approved=False),
    EventType.PR_MERGED: SpawnAgent(AgentType.DEPLOYER),
    EventType.DEPLOY_REQUESTED: SpawnAgent(AgentType.DEPLOYER),
    EventType.DEPLOY_COMPLETED: SpawnAgent(AgentType.VERIFIER),
    EventType.AUDIT_REQUESTED: SpawnAgent(AgentType.AUDITOR),
    EventType.PR_CHANGES_REQUESTED: SpawnAgent(AgentType.CODING, fixup=True),
    EventType.VERIFY_PASSED: CompleteTask(),
    EventType.VERIFY_FAILED: CreateBugTask(),
    EventType.AUDIT_COMPLETED: CreateFindingTasks(),
    EventType.AGENT_FINISHED: ReadOutcome(),
}


def reaction_for(event_type: EventType) -> Reaction:
    return ROUTES[event_type]


@dataclass(frozen=True)
class RetryPolicy:
    """After a handler failure: retry after `delay(attempt)` seconds, or give up past `max_attempts`."""

    max_attempts: int = 4
    first_delay: float = 0.5
    factor: float = 4.0
    max_delay: float = 60.0

    def next_delay(self, attempts: int) -> float | None:
        if attempts >= self.max_attempts:
            return None
        return min(self.first_delay * self.factor ** (attempts - 1), self.max_delay)


# What a webhook may subscribe to (the store enqueues these inside the change's transaction).
WEBHOOK_EVENTS = (
    "task.completed",
    "task.failed",
    "agent.completed",
    "agent.failed",
    "agent.rate_limited",
    "agent.budget_exceeded",
    "agent.stalled",
    "agent.looping",
    "queue.paused",
    "pr.opened",
    "task.awaiting_approval",
)
