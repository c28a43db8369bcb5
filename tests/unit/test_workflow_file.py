"""The rules of a repository's `.orchestrator/workflow.toml`: what parses, where an error points, which
template variables exist, and which stages a file can skip."""

from __future__ import annotations

import pytest

from orchestrator.domain import workflow_file as wf
from orchestrator.domain.events import CompleteTask, EventType, SpawnAgent, reaction_for
from orchestrator.domain.pr_loop import Gate
from orchestrator.domain.types import AgentType

COMPLETE = """\
require_approval = "merge"

[agents.coding]
model = "claude-sonnet-4-5"
max_turns = 30
budget_usd = 2.5
prompt = '''
You are the coding agent of calc. Task $task_id: ${title} on $branch.
It costs $$5.
'''

[stages]
skip = ["deployer", "verifier"]
"""


def _error(text: str) -> str:
    with pytest.raises(wf.WorkflowFileError) as caught:
        wf.parse(text)
    return str(caught.value)


def test_a_complete_file_parses() -> None:
    workflow = wf.parse(COMPLETE)
    coding = workflow.agent(AgentType.CODING)
    assert (coding.model, coding.max_turns, coding.budget_usd) == ("claude-sonnet-4-5", 30, 2.5)
    assert workflow.agent(AgentType.REVIEWER) == wf.AgentSettings()
    assert workflow.gates(frozenset()) == frozenset({Gate.MERGE})
    # a repository adds gates to the operator's, never lifts one
    assert workflow.gates(frozenset({Gate.DEPLOY})) == frozenset({Gate.MERGE, Gate.DEPLOY})
    assert wf.parse('require_approval = "none"\n').gates(frozenset({Gate.DEPLOY})) == frozenset({Gate.DEPLOY})
    assert wf.DEFAULT.gates(frozenset({Gate.DEPLOY})) == frozenset({Gate.DEPLOY})
    assert workflow.skips(AgentType.DEPLOYER) and not workflow.skips(AgentType.CODING)
    assert wf.parse("") == wf.DEFAULT


def test_an_unknown_field_names_its_line_and_path() -> None:
    text = '[agents.coding]\nmodel = "m"\n\nmodle = "x"\n'
    assert _error(text) == ".orchestrator/workflow.toml, line 4, field agents.coding.modle: unknown field"
    assert _error('x = 1\n[agents.coding]\nmodel = "m"\n') == (
        ".orchestrator/workflow.toml, line 1, field x: unknown field"
    )
    assert ", line 2, field agents.codng: unknown field" in _error('\n[agents.codng]\nmodel = "m"\n')


def test_bad_toml_names_its_line() -> None:
    assert "line 3" in _error('[agents.coding]\nmodel = "m"\nmax_turns = = 3\n')


def test_a_wrong_value_names_its_line() -> None:
    message = _error("[agents.reviewer]\nmax_turns = 0\n")
    assert message.startswith(".orchestrator/workflow.toml, line 2, field agents.reviewer.max_turns:")
    assert "line 2, field require_approval: unknown approval gate(s) merj" in _error(
        '\nrequire_approval = "merj"\n'
    )
    assert "field agents.coding.model" in _error('[agents.coding]\nmodel = "x; rm -rf /"\n')


def test_key_line_follows_tables_dotted_keys_and_skips_multiline_strings() -> None:
    text = '[agents]\ncoding.model = "m"\n[agents.reviewer]\nprompt = """\nmodel = 1\n"""\nmodel = "r"\n'
    assert wf.key_line(text, ("agents", "coding", "model")) == 2
    assert wf.key_line(text, ("agents", "reviewer", "model")) == 7
    assert wf.key_line(text, ("agents", "reviewer", "max_turns")) == 3
    assert wf.key_line(text, ("stages",)) is None


def test_a_prompt_names_only_the_documented_variables() -> None:
    message = _error('[agents.coding]\nprompt = "$title and ${secret} and $settings"\n')
    assert "line 2, field agents.coding.prompt: unknown variable(s) $secret, $settings" in message
    assert "starts no variable" in _error('[agents.coding]\nprompt = "costs $5"\n')
    for attack in ("{title.__class__}", "$title.__class__.__init__", "{0}", "%(title)s"):
        template = f"x {attack} y"
        wf.template_problem(template)  # accepted as text: nothing of it is looked up
        filled = wf.fill(template, {"title": "T"})
        assert "__init__" not in filled or filled == f"x {attack.replace('$title', 'T')} y\n"
        assert "<class" not in filled


def test_fill_substitutes_by_name_only() -> None:
    filled = wf.fill("$title / ${branch} / $$ / $workspace", {"title": "T", "branch": "b", "x": "X"})
    assert filled == "T / b / $ /\n"


def test_only_deployer_and_verifier_can_be_skipped() -> None:
    assert "coding cannot be skipped" in _error('[stages]\nskip = ["coding"]\n')
    assert "field stages.skip.0" in _error('[stages]\nskip = ["nobody"]\n')


def test_skipping_deployer_and_verifier_completes_after_merge() -> None:
    both = wf.parse('[stages]\nskip = ["deployer", "verifier"]\n')
    merged = wf.with_skips(reaction_for(EventType.PR_MERGED), both)
    assert merged == wf.StageSkipped(AgentType.DEPLOYER, EventType.DEPLOY_COMPLETED)
    assert wf.with_skips(reaction_for(EventType.DEPLOY_COMPLETED), both) == wf.StageSkipped(
        AgentType.VERIFIER, None
    )
    assert wf.with_skips(reaction_for(EventType.TASK_PLAN_CREATED), both) == SpawnAgent(AgentType.CODING)
    assert wf.with_skips(reaction_for(EventType.VERIFY_PASSED), both) == CompleteTask()
    assert wf.with_skips(reaction_for(EventType.PR_MERGED), wf.DEFAULT) == SpawnAgent(AgentType.DEPLOYER)


def test_a_file_over_the_cap_is_refused() -> None:
    assert "larger than 65536 bytes" in _error("# " + "x" * wf.WORKFLOW_FILE_CAP)


def test_a_hostile_key_is_shown_escaped_and_short() -> None:
    message = _error('"a\\nb' + "x" * 5000 + '" = 1\n')
    assert "\n" not in message and "a\\nb" in message and len(message) < 400


def test_the_file_lowers_the_operators_limits_never_raises_them() -> None:
    shaped = wf.parse(COMPLETE).agent(AgentType.CODING)
    assert (shaped.within(50, None).max_turns, shaped.within(50, None).budget_usd) == (30, 2.5)
    assert (shaped.within(10, 1.0).max_turns, shaped.within(10, 1.0).budget_usd) == (10, 1.0)
    assert wf.AgentSettings().within(10, 1.0) == wf.AgentSettings()


HOOKS = """\
[hooks]
after_create = "npm ci"
before_run = '''
cp .env.example .env
echo ready
'''
after_run = "git status --short"
before_remove = "rm -rf node_modules"
timeout_seconds = 300
"""


def test_hooks_parse_with_their_timeout_and_which_ones_fail_the_agent() -> None:
    hooks = wf.parse(HOOKS).hooks
    assert hooks.command(wf.HookName.AFTER_CREATE) == "npm ci"
    assert hooks.command(wf.HookName.BEFORE_RUN) == "cp .env.example .env\necho ready\n"
    assert (hooks.after_run, hooks.before_remove, hooks.timeout_seconds) == (
        "git status --short",
        "rm -rf node_modules",
        300,
    )
    assert hooks.any and not wf.DEFAULT.hooks.any
    assert wf.DEFAULT.hooks.timeout_seconds == wf.HOOK_TIMEOUT_SECONDS
    assert [n for n in wf.HookName if n.fatal] == [wf.HookName.AFTER_CREATE, wf.HookName.BEFORE_RUN]
    only_one = wf.parse('[hooks]\nafter_run = "make clean"\n').hooks
    assert only_one.command(wf.HookName.BEFORE_RUN) is None and only_one.any


def test_bad_hooks_name_their_line_and_field() -> None:
    assert _error('[hooks]\nbefore_run = "x"\nbefore_start = "y"\n') == (
        ".orchestrator/workflow.toml, line 3, field hooks.before_start: unknown field"
    )
    too_long = _error(f'[hooks]\nafter_create = "{"x" * (wf.HOOK_COMMAND_CAP + 1)}"\n')
    assert too_long.startswith(".orchestrator/workflow.toml, line 2, field hooks.after_create: ")
    empty = _error('[hooks]\nafter_create = ""\n')
    assert "line 2, field hooks.after_create" in empty
    nul = _error('[hooks]\ntimeout_seconds = 5\nafter_run = "a\\u0000b"\n')
    assert nul.endswith("line 3, field hooks.after_run: a hook command cannot hold a NUL character")
    for wrong in ("0", "3601", '"60"'):
        said = _error(f"[hooks]\ntimeout_seconds = {wrong}\n")
        assert said.startswith(".orchestrator/workflow.toml, line 2, field hooks.timeout_seconds: "), said
    assert "field hooks.before_run" in _error("[hooks]\nbefore_run = 3\n")


def test_a_stages_retry_policy_says_when_and_after_how_long_its_step_runs_again() -> None:
    workflow = wf.parse(
        "[retry.coding]\nattempts = 3\nbackoff_seconds = 10\nresume = true\n"
        'no_retry_on = ["budget_exceeded", "hook_failed", "invalid_outcome_twice"]\n'
    )
    coding = workflow.retry_of(AgentType.CODING)
    assert coding.resume and workflow.retry_of(AgentType.REVIEWER) == wf.StageRetry()
    assert wf.StageRetry().attempts == 1  # no policy: a failed step fails the task, as before
    assert coding.delay_before_next(1, "timeout", 0) == 10
    assert coding.delay_before_next(2, "error", 0) == 20  # doubling
    assert coding.delay_before_next(3, "error", 0) is None  # three runs in all
    assert coding.delay_before_next(1, "budget_exceeded", 0) is None
    assert coding.delay_before_next(1, "hook_failed", 0) is None
    assert coding.delay_before_next(1, "killed", 0) is None  # a person's kill is never retried
    assert coding.delay_before_next(1, "rate_limited", 0) is None  # it has its own rule
    assert coding.delay_before_next(1, wf.INVALID_OUTCOME, 0) == 10
    assert coding.delay_before_next(2, wf.INVALID_OUTCOME, 1) is None  # the second in a row
    assert coding.delay_before_next(1, "error", 0, refused=True) == 10  # not in this no_retry_on
    assert wf.StageRetry(attempts=2).delay_before_next(1, "error", 0, refused=True) is None  # the default
    assert wf.StageRetry(attempts=2).delay_before_next(1, "error", 0) == 30
    lenient = wf.StageRetry(attempts=5, backoff_seconds=3000, no_retry_on=[])
    assert lenient.delay_before_next(2, wf.INVALID_OUTCOME, 1) == wf.RETRY_BACKOFF_MAX_SECONDS
    assert lenient.delay_before_next(1, "error", 0, refused=True) == 3000
    assert workflow.retry.max_empty_runs == 5
    assert set(wf.RETRYABLE_ENDS) == {
        "error",
        "exit_code",
        "no_result",
        "budget_exceeded",
        "timeout",
        "stalled",
        "looping",
        "start_failed",
        "hook_failed",
        "lost",
    }


def test_a_bad_retry_policy_names_its_line_and_field() -> None:
    said = _error('[retry.coding]\nattempts = 2\nno_retry_on = ["tired"]\n')
    assert said.startswith(
        ".orchestrator/workflow.toml, line 3, field retry.coding.no_retry_on: unknown end(s) "
        "'tired': known are error, "
    ), said
    assert "line 2, field retry.max_empty_runs" in _error("[retry]\nmax_empty_runs = 51\n")
    assert "line 2, field retry.coding.attempts" in _error("[retry.coding]\nattempts = 6\n")
    assert "field retry.planner: unknown field" in _error("[retry.planner]\nattempts = 2\n")
