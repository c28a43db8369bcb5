from __future__ import annotations

import json

from orchestrator.domain.outcome import Ending, judge_run
from orchestrator.domain.stream_json import RunSummary, parse_line
from orchestrator.domain.types import AgentStatus

SESSION = "0f3c2a4e-8b1d-4c6f-9a2e-5d7b1c3e9f01"
INIT = {
    "type": "system",
    "subtype": "init",
    "session_id": SESSION,
    "model": "m",
    "claude_code_version": "2.1.328",
}
TOOL = {
    "type": "assistant",
    "session_id": SESSION,
    "message": {"id": "msg_1", "content": [{"type": "tool_use", "name": "Bash", "input": {}}]},
}
RESULT_OK = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "num_turns": 3,
    "result": "done",
    "total_cost_usd": 0.25,
    "duration_ms": 700,
    "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2},
    "session_id": SESSION,
}
RESULT_API_ERROR = {
    "type": "result",
    "subtype": "success",
    "is_error": True,
    "terminal_reason": "api_error",
    "api_error_status": 500,
    "result": "API Error: 500 internal error",
}


def _summary(*objs: dict[str, object]) -> RunSummary:
    summary = RunSummary()
    for obj in objs:
        parsed = parse_line(json.dumps(obj))
        assert parsed is not None
        summary.feed(parsed)
    return summary


def test_parse_line_takes_only_json_objects() -> None:
    assert parse_line('{"type":"x"}') == {"type": "x"}
    for text in ["", "hello", "[1,2]", "{broken", '"str"', " {}"]:
        assert parse_line(text) is None


def test_summary_reads_result_whatever_the_order_of_lines() -> None:
    ui = {"type": "system", "subtype": "ui_invalidate"}
    summary = _summary(ui, INIT, TOOL, TOOL, RESULT_OK)
    assert summary.session_id == SESSION and summary.model == "m" and summary.cli_version == "2.1.328"
    assert summary.result_seen and summary.is_error is False
    assert (summary.cost_usd, summary.input_tokens, summary.output_tokens) == (0.25, 10, 5)
    assert summary.num_turns == 3 and summary.result_text == "done"
    assert summary.tool_calls == 2 and summary.assistant_messages == 1


def test_a_session_id_that_is_not_a_uuid_is_ignored() -> None:
    """Review L9: stdout is the agent's; a forged id must not come back as `--resume <id>`."""
    for forged in ["--dangerously-skip-permissions", "../../x", "s-1", SESSION.upper() + "\n", "", 7]:
        summary = _summary(INIT, {**RESULT_OK, "session_id": forged})
        assert summary.session_id == SESSION, forged
    assert _summary({**INIT, "session_id": "--help"}).session_id is None


def test_success_routes_on_is_error_not_subtype() -> None:
    verdict = judge_run(1, _summary(INIT, RESULT_API_ERROR), Ending())
    assert verdict.status is AgentStatus.FAILED
    assert verdict.error is not None and "500" in verdict.error and "internal error" in verdict.error


def test_rate_and_usage_limits_are_not_failures() -> None:
    overloaded = {
        **RESULT_API_ERROR,
        "api_error_status": 529,
        "result": "API Error: Repeated 529 Overloaded errors",
    }
    assert judge_run(1, _summary(INIT, overloaded), Ending()).status is AgentStatus.RATE_LIMITED
    usage = {
        **RESULT_API_ERROR,
        "api_error_status": None,
        "result": "Claude AI usage limit reached|1893456000",
    }
    verdict = judge_run(1, _summary(INIT, usage), Ending())
    assert verdict.status is AgentStatus.RATE_LIMITED
    assert verdict.reset_at == 1893456000.0


def test_verdicts() -> None:
    ok = _summary(INIT, RESULT_OK)
    assert judge_run(0, ok, Ending()).status is AgentStatus.COMPLETED
    assert judge_run(0, ok, Ending(timed_out_after=5)).status is AgentStatus.TIMEOUT
    assert judge_run(143, ok, Ending(killed_by="api")).status is AgentStatus.KILLED
    missing = judge_run(137, _summary(INIT), Ending(), last_stderr="segfault")
    assert missing.status is AgentStatus.FAILED
    assert (
        missing.error is not None and "without a result line" in missing.error and "segfault" in missing.error
    )
    max_turns = {
        **RESULT_OK,
        "is_error": True,
        "subtype": "error_max_turns",
        "result": None,
        "errors": ["Reached max"],
    }
    verdict = judge_run(1, _summary(max_turns), Ending())
    assert verdict.status is AgentStatus.FAILED and verdict.error == "Reached max"


def test_strange_field_types_do_not_break_the_summary() -> None:
    summary = _summary(
        {"type": "result", "is_error": False, "total_cost_usd": "lots", "num_turns": True, "usage": 3}
    )
    assert summary.result_seen and summary.cost_usd is None and summary.num_turns is None
