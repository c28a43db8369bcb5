"""How a finished run becomes a final agent status and reason."""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.stream_json import RunSummary
from orchestrator.domain.types import AgentStatus


@dataclass(frozen=True)
class Ending:
    """Why the supervisor stopped waiting, when it was not the process ending by itself."""

    timed_out_after: float | None = None
    killed_by: str | None = None
    killed_for: EndReason = EndReason.KILLED
    budget_exceeded: str | None = None


@dataclass(frozen=True)
class Verdict:
    reason: EndReason
    error: str | None
    reset_at: float | None = None

    @property
    def status(self) -> AgentStatus:
        return self.reason.status


CLI_BUDGET_STOP = "error_max_budget_usd"
_RESET_EPOCH = re.compile(r"\|(\d{10})\b")
_USAGE_LIMIT = re.compile(r"usage limit|rate limit|limit reached", re.IGNORECASE)


def rate_limit_of(summary: RunSummary) -> Verdict | None:
    """A run ended by the model API's rate or usage limit (429, 529, or the CLI's usage-limit message)."""
    text = summary.result_text or ""
    limited = summary.api_error_status in (429, 529) or (summary.is_error and _USAGE_LIMIT.search(text))
    if not limited:
        return None
    found = _RESET_EPOCH.search(text)
    reset_at = float(found.group(1)) if found else None
    return Verdict(EndReason.RATE_LIMITED, f"rate_limited: {text[:500]}", reset_at)


def judge_run(exit_code: int | None, summary: RunSummary, ending: Ending, last_stderr: str = "") -> Verdict:
    if ending.timed_out_after is not None:
        return Verdict(EndReason.TIMEOUT, f"timed out after {ending.timed_out_after:g} s")
    if ending.budget_exceeded is not None:
        return Verdict(EndReason.BUDGET_EXCEEDED, ending.budget_exceeded)
    if ending.killed_by is not None:
        return Verdict(ending.killed_for, f"killed by {ending.killed_by}")
    if not summary.result_seen:
        detail = f": {last_stderr.strip()[:500]}" if last_stderr.strip() else ""
        return Verdict(EndReason.NO_RESULT, f"ended without a result line (exit code {exit_code}){detail}")
    limited = rate_limit_of(summary) if summary.result_seen else None
    if limited is not None:
        return limited
    if summary.is_error and summary.subtype == CLI_BUDGET_STOP:  # the CLI's own stop, --max-budget-usd
        return Verdict(
            EndReason.BUDGET_EXCEEDED, f"budget_exceeded: {summary.result_text or 'the CLI stopped'}"
        )
    if summary.is_error:
        reason = summary.result_text or summary.terminal_reason or "the run reported an error"
        if summary.api_error_status is not None:
            reason = f"API error {summary.api_error_status}: {reason}"
        return Verdict(EndReason.ERROR, reason[:2000])
    if exit_code not in (0, None):
        return Verdict(EndReason.EXIT_CODE, f"exit code {exit_code} after a successful result")
    return Verdict(EndReason.COMPLETED, None)
