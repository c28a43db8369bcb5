from enum import StrEnum


class AgentType(StrEnum):
    STARTER = "starter"
    CODING = "coding"
    REVIEWER = "reviewer"
    DEPLOYER = "deployer"
    VERIFIER = "verifier"
    AUDITOR = "auditor"


class AgentStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    KILLED = "killed"
    RATE_LIMITED = "rate_limited"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_AGENT_STATUSES


TERMINAL_AGENT_STATUSES = frozenset(
    {
        AgentStatus.COMPLETED,
        AgentStatus.FAILED,
        AgentStatus.TIMEOUT,
        AgentStatus.KILLED,
        AgentStatus.RATE_LIMITED,
    }
)
ACTIVE_AGENT_STATUSES = frozenset({AgentStatus.STARTING, AgentStatus.RUNNING})


class TaskStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    AWAITING_APPROVAL = "awaiting_approval"


class QueueItemStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class LogStream(StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"
    COMBINED = "combined"
    HOOK = "hook"  # a workspace hook's output (domain/workflow_file.py Hooks)
