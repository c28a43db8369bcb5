"""Why an agent ended, as a typed value: what decisions are taken on (requeue a never-started agent, the
`agent.budget_exceeded` webhook, resume a stalled run), never the human-readable `error` text, which
may hold whatever the agent printed."""

from __future__ import annotations

from enum import StrEnum

from orchestrator.domain.types import AgentStatus


class EndReason(StrEnum):
    COMPLETED = "completed"  # a successful result and a clean exit
    ERROR = "error"  # the run's result said it failed (the model API's error included)
    EXIT_CODE = "exit_code"  # a successful result, then a non-zero exit
    NO_RESULT = "no_result"  # the process ended without a result line
    BUDGET_EXCEEDED = "budget_exceeded"  # the watchdog stopped it past its turns, cost or wall budget
    TIMEOUT = "timeout"
    KILLED = "killed"  # on request (the API)
    SHUTDOWN = "shutdown"  # the service stopped and took its agents down with it
    STALLED = "stalled"  # the watchdog ended it after a silence
    LOOPING = "looping"  # the watchdog ended it repeating the same tool call
    RATE_LIMITED = "rate_limited"  # the model API's rate or usage limit
    START_FAILED = "start_failed"  # its workspace or process could not be set up
    NEVER_STARTED = "never_started"  # its service stopped before the process was started
    LOST = "lost"  # its run could not be reached after a restart or from another host
    HOOK_FAILED = "hook_failed"  # its after_create or before_run hook failed: the CLI was not started

    @property
    def status(self) -> AgentStatus:
        """The terminal status an agent ending for this reason is in."""
        return _STATUS[self]


_STATUS: dict[EndReason, AgentStatus] = {
    EndReason.COMPLETED: AgentStatus.COMPLETED,
    EndReason.ERROR: AgentStatus.FAILED,
    EndReason.EXIT_CODE: AgentStatus.FAILED,
    EndReason.NO_RESULT: AgentStatus.FAILED,
    EndReason.BUDGET_EXCEEDED: AgentStatus.FAILED,
    EndReason.TIMEOUT: AgentStatus.TIMEOUT,
    EndReason.KILLED: AgentStatus.KILLED,
    EndReason.SHUTDOWN: AgentStatus.KILLED,
    EndReason.STALLED: AgentStatus.KILLED,
    EndReason.LOOPING: AgentStatus.KILLED,
    EndReason.RATE_LIMITED: AgentStatus.RATE_LIMITED,
    EndReason.START_FAILED: AgentStatus.FAILED,
    EndReason.NEVER_STARTED: AgentStatus.FAILED,
    EndReason.LOST: AgentStatus.FAILED,
    EndReason.HOOK_FAILED: AgentStatus.FAILED,
}
