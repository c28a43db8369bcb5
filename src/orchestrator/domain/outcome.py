"""How a finished run becomes a final agent status and reason."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.domain.stream_json import RunSummary
from orchestrator.domain.types import AgentStatus


@dataclass(frozen=True)
class Ending:
    """Why the supervisor stopped waiting, when it was not the process ending by itself."""

    timed_out_after: float | None = None
    killed_by: str | None = None


@dataclass(frozen=True)
class Verdict:
    status: AgentStatus
    error: str | None


def judge_run(exit_code: int | None, summary: RunSummary, ending: Ending, last_stderr: str = "") -> Verdict:
    if ending.timed_out_after is not None:
        return Verdict(AgentStatus.TIMEOUT, f"timed out after {ending.timed_out_after:g} s")
    if ending.killed_by is not None:
        return Verdict(AgentStatus.KILLED, f"killed by {ending.killed_by}")
    if not summary.result_seen:
        detail = f": {last_stderr.strip()[:500]}" if last_stderr.strip() else ""
        return Verdict(AgentStatus.FAILED, f"ended without a result line (exit code {exit_code}){detail}")
    if summary.is_error:
        reason = summary.result_text or summary.terminal_reason or "the run reported an error"
        if summary.api_error_status is not None:
            reason = f"API error {summary.api_error_status}: {reason}"
        return Verdict(AgentStatus.FAILED, reason[:2000])
    if exit_code not in (0, None):
        return Verdict(AgentStatus.FAILED, f"exit code {exit_code} after a successful result")
    return Verdict(AgentStatus.COMPLETED, None)
