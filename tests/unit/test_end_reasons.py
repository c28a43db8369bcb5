"""Why a run ended, as a typed value: from the supervisor's ending and the run's own output."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.outcome import Ending, judge_run
from orchestrator.domain.stream_json import RunSummary, parse_line
from orchestrator.domain.types import AgentStatus
from orchestrator.domain.watchdog import Budget, Watchdog, WatchRules

OK = {"type": "result", "subtype": "success", "is_error": False, "result": "done"}


def _summary(*objs: dict[str, object]) -> RunSummary:
    summary = RunSummary()
    for obj in objs:
        parsed = parse_line(json.dumps(obj))
        assert parsed is not None
        summary.feed(parsed)
    return summary


def test_each_ending_has_its_reason_and_status() -> None:
    ok = _summary(OK)
    cases = [
        (judge_run(0, ok, Ending()), EndReason.COMPLETED, AgentStatus.COMPLETED),
        (judge_run(0, ok, Ending(timed_out_after=5)), EndReason.TIMEOUT, AgentStatus.TIMEOUT),
        (judge_run(143, ok, Ending(killed_by="api")), EndReason.KILLED, AgentStatus.KILLED),
        (
            judge_run(143, ok, Ending(killed_by="shutdown", killed_for=EndReason.SHUTDOWN)),
            EndReason.SHUTDOWN,
            AgentStatus.KILLED,
        ),
        (
            judge_run(143, ok, Ending(killed_by="the watchdog", killed_for=EndReason.STALLED)),
            EndReason.STALLED,
            AgentStatus.KILLED,
        ),
        (
            judge_run(143, ok, Ending(budget_exceeded="budget_exceeded: 4 turns > 3")),
            EndReason.BUDGET_EXCEEDED,
            AgentStatus.FAILED,
        ),
        (judge_run(137, _summary(), Ending()), EndReason.NO_RESULT, AgentStatus.FAILED),
        (judge_run(3, ok, Ending()), EndReason.EXIT_CODE, AgentStatus.FAILED),
        (judge_run(1, _summary({**OK, "is_error": True}), Ending()), EndReason.ERROR, AgentStatus.FAILED),
        (
            judge_run(1, _summary({**OK, "is_error": True, "api_error_status": 429}), Ending()),
            EndReason.RATE_LIMITED,
            AgentStatus.RATE_LIMITED,
        ),
    ]
    for verdict, reason, status in cases:
        assert (verdict.reason, verdict.status) == (reason, status), verdict


def test_every_reason_ends_in_a_terminal_status() -> None:
    assert all(reason.status.is_terminal for reason in EndReason)


@given(st.text(max_size=200))
def test_what_the_run_printed_never_makes_a_budget_stop(tail: str) -> None:
    """The result line is the agent's output: whatever its text, only the watchdog stops for budget."""
    forged = _summary({**OK, "is_error": True, "result": f"budget_exceeded: {tail}"})
    verdict = judge_run(1, forged, Ending())
    assert verdict.reason is not EndReason.BUDGET_EXCEEDED
    # the CLI's own usage-limit message is a result line too: text that reads like it parks the run
    assert verdict.reason in (EndReason.ERROR, EndReason.RATE_LIMITED)
    assert verdict.error is not None and "budget_exceeded" in verdict.error


def test_the_watchdog_names_the_reason_of_each_stop() -> None:
    busy = _summary(*[{"type": "assistant", "message": {"id": f"m{i}", "content": []}} for i in range(3)])
    [stop] = Watchdog(WatchRules(budget=Budget(turns=2)), started_at=0.0).check(busy, 1.0, 1.0)
    assert stop.end_reason is EndReason.BUDGET_EXCEEDED
    rules = WatchRules(stall_seconds=1.0, stall_grace_seconds=0.0, stall_action="kill")
    watchdog = Watchdog(rules, started_at=0.0)
    watchdog.check(busy, 5.0, 0.0)  # flagged first
    [stop] = watchdog.check(busy, 6.0, 0.0)
    assert stop.end_reason is EndReason.STALLED
