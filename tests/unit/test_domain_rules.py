"""The pure rules: what stops or flags a run, what the queue starts next, how often agents may spawn,
when a failed event is retried, and what command line and environment an agent gets. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.agents.command import ClaudeInvocation, build_argv, build_env
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.events import RetryPolicy
from orchestrator.domain.queue_rules import (
    QueueSettings,
    SettingError,
    busy_repositories,
    choose_next,
    dependency_state,
    find_cycle,
    has_room,
    parse_setting,
    repositories_of,
)
from orchestrator.domain.rate import SpawnRate
from orchestrator.domain.stream_json import RunSummary
from orchestrator.domain.watchdog import Budget, Flag, Prices, Stop, Watchdog, WatchRules

# --- watchdog: budgets ---------------------------------------------------------------------------


def _watch(**rules: object) -> Watchdog:
    return Watchdog(WatchRules(**rules), started_at=1000.0)  # type: ignore[arg-type]


def test_turn_budget_stops_only_past_its_limit() -> None:
    dog = _watch(budget=Budget(turns=3))
    assert dog.check(RunSummary(assistant_messages=3), now=1001.0, last_output=1001.0) == []
    [stop] = dog.check(RunSummary(assistant_messages=4), now=1001.0, last_output=1001.0)
    assert isinstance(stop, Stop) and stop.kind == "budget"
    assert stop.end_reason is EndReason.BUDGET_EXCEEDED
    assert "4 turns > 3" in stop.reason


def test_usd_budget_counts_the_reported_cost() -> None:
    dog = _watch(budget=Budget(usd=0.5))
    assert dog.check(RunSummary(cost_usd=0.5), now=1001.0, last_output=1001.0) == []
    [stop] = dog.check(RunSummary(cost_usd=0.51), now=1001.0, last_output=1001.0)
    assert isinstance(stop, Stop) and stop.end_reason is EndReason.BUDGET_EXCEEDED
    assert "$0.5100 > $0.5000" in stop.reason


def test_usd_budget_counts_the_token_estimate_before_any_cost_is_reported() -> None:
    dog = _watch(budget=Budget(usd=1.0), prices=Prices(input_per_mtok=4.0, output_per_mtok=20.0))
    # 100k output tokens at $20/Mtok = $2, no cost line yet.
    summary = RunSummary(tokens_out_seen=100_000)
    assert dog.spent(summary) == pytest.approx(2.0)
    [stop] = dog.check(summary, now=1001.0, last_output=1001.0)
    assert isinstance(stop, Stop) and stop.kind == "budget"
    # The larger of estimate and reported cost counts.
    assert dog.spent(RunSummary(tokens_in_seen=1_000_000, cost_usd=7.0)) == pytest.approx(7.0)
    assert dog.spent(RunSummary(tokens_in_seen=1_000_000, cost_usd=1.0)) == pytest.approx(4.0)


def test_wall_seconds_budget_stops_after_that_much_time() -> None:
    dog = _watch(budget=Budget(wall_seconds=30))
    assert dog.check(RunSummary(), now=1030.0, last_output=1030.0) == []
    [stop] = dog.check(RunSummary(), now=1030.5, last_output=1030.5)
    assert isinstance(stop, Stop) and stop.end_reason is EndReason.BUDGET_EXCEEDED
    assert "wall time" in stop.reason


def test_no_budget_never_stops() -> None:
    dog = _watch()
    huge = RunSummary(assistant_messages=10_000, cost_usd=1e6, tokens_out_seen=10**9)
    assert dog.check(huge, now=1e9, last_output=1e9) == []


def test_a_task_budget_overrides_only_what_it_sets() -> None:
    merged = Budget(turns=5).merged_over(Budget(usd=2.0, turns=50, wall_seconds=600))
    assert merged == Budget(usd=2.0, turns=5, wall_seconds=600)
    assert Budget().merged_over(Budget(usd=1.0)) == Budget(usd=1.0)


# --- watchdog: stall and loop --------------------------------------------------------------------


def test_silence_is_flagged_once_then_only_flag_action_never_stops() -> None:
    dog = _watch(stall_seconds=10, stall_grace_seconds=5, stall_action="flag")
    assert dog.check(RunSummary(), now=1010.0, last_output=1000.0) == []
    [flag] = dog.check(RunSummary(), now=1011.0, last_output=1000.0)
    assert flag == Flag("stalled", "no output for 11 s")
    assert dog.check(RunSummary(), now=1012.0, last_output=1000.0) == []
    assert dog.check(RunSummary(), now=2000.0, last_output=1000.0) == []


def test_silence_with_kill_action_stops_after_the_grace() -> None:
    dog = _watch(stall_seconds=10, stall_grace_seconds=5, stall_action="kill")
    [flag] = dog.check(RunSummary(), now=1011.0, last_output=1000.0)
    assert isinstance(flag, Flag)
    assert dog.check(RunSummary(), now=1016.0, last_output=1000.0) == []
    [stop] = dog.check(RunSummary(), now=1016.5, last_output=1000.0)
    assert isinstance(stop, Stop) and stop.end_reason is EndReason.STALLED


def test_output_after_a_stall_clears_the_flag() -> None:
    dog = _watch(stall_seconds=10, stall_grace_seconds=5, stall_action="kill")
    dog.check(RunSummary(), now=1011.0, last_output=1000.0)
    assert dog.check(RunSummary(), now=1012.0, last_output=1012.0) == []
    assert "stalled" not in dog.flags
    # A new silence starts a new grace: flagged again, not killed at once.
    [again] = dog.check(RunSummary(), now=1030.0, last_output=1012.0)
    assert isinstance(again, Flag)


def test_a_loop_is_flagged_then_stopped_after_the_grace() -> None:
    dog = _watch(loop_repeats=3, stall_grace_seconds=5, stall_action="kill_resume")
    assert dog.check(RunSummary(same_tool_repeats=2), now=1001.0, last_output=1001.0) == []
    [flag] = dog.check(RunSummary(same_tool_repeats=3), now=1001.0, last_output=1001.0)
    assert flag == Flag("looping", "the same tool call 3 times in a row")
    [stop] = dog.check(RunSummary(same_tool_repeats=9), now=1007.0, last_output=1007.0)
    assert isinstance(stop, Stop) and stop.end_reason is EndReason.LOOPING


def test_the_next_due_time_is_when_a_check_may_decide_otherwise_without_output() -> None:
    assert _watch(budget=Budget(turns=3), loop_repeats=2).next_due(now=1001.0, last_output=1001.0) is None
    dog = _watch(budget=Budget(wall_seconds=60), stall_seconds=10, stall_grace_seconds=5, stall_action="kill")
    assert dog.next_due(now=1001.0, last_output=1001.0) == 1011.0  # silent for 10 s
    assert dog.next_due(now=1001.0, last_output=1058.0) == 1060.0  # the wall-time budget ends first
    [flag] = dog.check(RunSummary(), now=1011.5, last_output=1001.0)
    assert isinstance(flag, Flag)
    assert dog.next_due(now=1011.5, last_output=1001.0) == 1016.5  # the flag's grace runs out
    [stop] = dog.check(RunSummary(), now=1016.51, last_output=1001.0)
    assert stop == Stop("stalled", "stalled: no output for 16 s")
    # what is past is no longer due: a loop's flag whose grace ran out while the calls changed
    looping = _watch(loop_repeats=2, stall_grace_seconds=5, stall_action="kill")
    looping.check(RunSummary(same_tool_repeats=2), now=1001.0, last_output=1001.0)
    assert looping.next_due(now=1002.0, last_output=1002.0) == 1006.0
    assert looping.check(RunSummary(same_tool_repeats=0), now=1007.0, last_output=1007.0) == []
    assert looping.next_due(now=1007.0, last_output=1007.0) is None


def test_a_budget_stop_wins_over_a_stall() -> None:
    dog = _watch(budget=Budget(turns=1), stall_seconds=1)
    [decision] = dog.check(RunSummary(assistant_messages=2), now=1100.0, last_output=1000.0)
    assert isinstance(decision, Stop) and decision.kind == "budget"


# --- queue rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    id: int
    position: int
    priority: int = 0
    ready: bool = True


def test_choose_next_takes_highest_priority_then_oldest() -> None:
    items = [Item(1, 0), Item(2, 1), Item(3, 9, priority=5), Item(4, 8, priority=5)]
    assert choose_next(QueueSettings(max_concurrent=2), 0, items) == Item(4, 8, priority=5)
    assert choose_next(QueueSettings(), 0, [Item(1, 3), Item(2, 1)]) == Item(2, 1)
    # Equal position: the lower id.
    assert choose_next(QueueSettings(), 0, [Item(9, 1), Item(8, 1)]) == Item(8, 1)


def test_choose_next_skips_items_that_are_not_ready() -> None:
    items = [Item(1, 0, priority=9, ready=False), Item(2, 5)]
    assert choose_next(QueueSettings(), 0, items) == Item(2, 5)
    assert choose_next(QueueSettings(), 0, [Item(1, 0, ready=False)]) is None


def test_choose_next_starts_nothing_while_paused_or_full() -> None:
    items = [Item(1, 0)]
    assert choose_next(QueueSettings(paused=True), 0, items) is None
    assert choose_next(QueueSettings(max_concurrent=2), 2, items) is None
    assert choose_next(QueueSettings(max_concurrent=2), 1, items) == Item(1, 0)


def test_dependency_state() -> None:
    assert dependency_state({}) == (True, None)
    assert dependency_state({"a": "completed", "b": "completed"}) == (True, None)
    assert dependency_state({"a": "completed", "b": "processing"}) == (False, None)
    assert dependency_state({"a": "queued"}) == (False, None)
    ready, why = dependency_state({"b": "failed", "a": None, "c": "completed"})
    assert not ready and why == "dependency a, b failed or is gone"


def test_find_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}, "a") is None
    assert find_cycle({"a": ["b"], "b": ["a"]}, "a") == ["a", "b", "a"]
    assert find_cycle({"a": ["a"]}, "a") == ["a", "a"]
    # A cycle downstream of the start is found too, shown from where it closes.
    assert find_cycle({"x": ["a"], "a": ["b"], "b": ["a"]}, "x") == ["a", "b", "a"]
    # A diamond is no cycle.
    assert find_cycle({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}, "a") is None


def test_parse_setting_accepts_and_normalises() -> None:
    assert parse_setting("paused", True) == ("paused", "true")
    assert parse_setting("paused", " FALSE ") == ("paused", "false")
    assert parse_setting("stop_on_failure", "true") == ("stop_on_failure", "true")
    assert parse_setting("max_concurrent", "7") == ("max_concurrent", "7")
    assert parse_setting("max_concurrent", 100) == ("max_concurrent", "100")
    for off in (None, "", 0, "0"):
        assert parse_setting("max_concurrent_per_repo", off) == ("max_concurrent_per_repo", "0")
    assert parse_setting("max_concurrent_per_repo", 2) == ("max_concurrent_per_repo", "2")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("paused", "yes", "paused: must be true or false"),
        ("paused", 1, "paused: must be true or false"),
        ("max_concurrent", True, "must be a whole number"),
        ("max_concurrent", 1.5, "must be a whole number"),
        ("max_concurrent", "1e3", "must be a whole number"),
        ("max_concurrent", 0, "must be between 1 and 100, got 0"),
        ("max_concurrent", 101, "must be between 1 and 100, got 101"),
        ("max_concurrent", "-3", "must be between 1 and 100, got -3"),
        ("max_concurrent", "9" * 40, "must be a whole number"),
        ("max_concurrent_per_repo", -1, "must be between 1 and 100"),
        ("nope", 1, "unknown setting 'nope'"),
    ],
)
def test_parse_setting_refuses(key: str, value: object, message: str) -> None:
    with pytest.raises(SettingError, match=message):
        parse_setting(key, value)


def test_repositories_and_room() -> None:
    assert repositories_of("o/a", ["o/b", "o/a"]) == frozenset({"o/a", "o/b"})
    assert repositories_of(None, None) == frozenset()
    busy = busy_repositories([frozenset({"o/a"}), frozenset({"o/a", "o/b"})])
    assert busy == {"o/a": 2, "o/b": 1}
    assert has_room(frozenset({"o/a"}), busy, None)
    assert not has_room(frozenset({"o/a"}), busy, 2)
    assert has_room(frozenset({"o/b"}), busy, 2)
    # Every repository of a task must have room.
    assert not has_room(frozenset({"o/b", "o/a"}), busy, 2)
    assert has_room(frozenset({"o/c"}), busy, 1)


# --- spawn rate ----------------------------------------------------------------------------------


def test_spawn_rate_allows_per_minute_then_says_how_long_to_wait() -> None:
    rate = SpawnRate(2)
    assert rate.take(0.0) is None
    assert rate.take(10.0) is None
    assert rate.take(20.0) == pytest.approx(40.0)
    # A refused request is not counted: the window frees at 60 s after the first.
    assert rate.take(59.0) == pytest.approx(1.0)
    assert rate.take(60.0) is None
    assert rate.take(65.0) == pytest.approx(5.0)
    assert rate.take(70.0) is None


def test_spawn_rate_without_a_limit_never_waits() -> None:
    rate = SpawnRate(None)
    assert all(rate.take(0.0) is None for _ in range(1000))


# --- event retry ---------------------------------------------------------------------------------


def test_retry_policy_backs_off_then_gives_up() -> None:
    policy = RetryPolicy(max_attempts=4, first_delay=0.5, factor=4.0, max_delay=60.0)
    assert [policy.next_delay(n) for n in (1, 2, 3)] == [0.5, 2.0, 8.0]
    assert policy.next_delay(4) is None
    assert policy.next_delay(5) is None


def test_retry_policy_caps_the_delay() -> None:
    policy = RetryPolicy(max_attempts=10, first_delay=1.0, factor=10.0, max_delay=30.0)
    assert policy.next_delay(2) == 10.0
    assert policy.next_delay(3) == 30.0
    assert policy.next_delay(9) == 30.0
    assert RetryPolicy(max_attempts=1).next_delay(1) is None


# --- agent command line and environment ----------------------------------------------------------


def test_build_argv() -> None:
    argv = build_argv(ClaudeInvocation(claude_bin="/bin/claude", max_turns=7))
    assert argv == [
        "/bin/claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--max-turns",
        "7",
        "--dangerously-skip-permissions",
        "--strict-mcp-config",
        "--setting-sources",
        "user",
    ]
    full = build_argv(
        ClaudeInvocation(
            claude_bin="claude",
            max_turns=3,
            model="opus",
            resume_session="sess-1",
            append_system_prompt="-- be careful",
            add_dirs=("/w/a", "/w/b"),
        )
    )
    assert full[11:] == [
        "--model",
        "opus",
        "--resume",
        "sess-1",
        "--add-dir",
        "/w/a",
        "--add-dir",
        "/w/b",
        "--append-system-prompt",
        "-- be careful",
    ]


PARENT = {
    "PATH": "/opt/bin:/usr/bin",
    "LANG": "C.UTF-8",
    "ANTHROPIC_API_KEY": "sk-ant-x",
    "CLAUDE_CODE_USE_BEDROCK": "1",
    "AWS_REGION": "eu-west-1",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "GITHUB_TOKEN": "ghp_secret",
    "GH_TOKEN": "gho_secret",
    "DATABASE_URL": "postgresql://u:p@h/db",
    "ORCHESTRATOR_API_TOKEN": "api-secret",
    "ORCHESTRATOR_WEBHOOK_SECRET": "hook-secret",
    "HOME": "/root",
}
SECRETS = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "DATABASE_URL",
    "ORCHESTRATOR_API_TOKEN",
    "ORCHESTRATOR_WEBHOOK_SECRET",
)


def _env(passthrough: tuple[str, ...] = (), running_as_root: bool = False) -> dict[str, str]:
    return build_env(
        PARENT,
        agent_id="coding-0123abcd",
        home=Path("/w/home"),
        config_dir=Path("/w/home/.claude"),
        running_as_root=running_as_root,
        passthrough=passthrough,
    )


def test_build_env_passes_only_the_allow_list() -> None:
    env = _env()
    assert env["PATH"] == "/opt/bin:/usr/bin"
    assert env["LANG"] == "C.UTF-8"
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-x"
    assert env["CLAUDE_CODE_USE_BEDROCK"] == "1"
    assert env["HOME"] == "/w/home" and env["CLAUDE_CONFIG_DIR"] == "/w/home/.claude"
    assert "AWS_REGION" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "coding-0123abcd" in env.values()
    assert "IS_SANDBOX" not in env
    assert _env(running_as_root=True)["IS_SANDBOX"] == "1"
    assert "ghp_secret" not in env.values()


def test_build_env_passthrough_adds_names_but_never_the_services_secrets() -> None:
    env = _env(passthrough=("AWS_REGION", *SECRETS))
    assert env["AWS_REGION"] == "eu-west-1"
    for name in SECRETS:
        assert name not in env, name
    values = set(env.values())
    for secret in ("ghp_secret", "gho_secret", "postgresql://u:p@h/db", "api-secret", "hook-secret"):
        assert secret not in values


def test_build_env_has_a_path_even_when_the_parent_has_none() -> None:
    env = build_env(
        {}, agent_id="coding-0123abcd", home=Path("/h"), config_dir=Path("/h/c"), running_as_root=False
    )
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
