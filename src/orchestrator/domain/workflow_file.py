"""A repository's own workflow, `.orchestrator/workflow.toml`: per agent type a prompt template, model,
max turns and budget; stages to skip; approval gates. Written by whoever can push to the repository's
default branch, so hostile text: it shapes an agent's prompt and model, never the service."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from string import Template
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.domain import agent_tools as at
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.events import EventType, Reaction, SpawnAgent
from orchestrator.domain.pr_loop import Gate, parse_gates
from orchestrator.domain.types import AgentType

WORKFLOW_FILE = ".orchestrator/workflow.toml"
WORKFLOW_FILE_CAP = 64 * 1024

# What a prompt template may name: the variables the built-in prompts are filled with
# (prompts/context.py task_context and workflow/context.py step_context).
TEMPLATE_VARIABLES = frozenset(
    {
        "task_id",
        "title",
        "description",
        "repos",
        "plan",
        "branch",
        "pr",
        "review_comments",
        "reports",
        "previous_failure",
        "evidence",
        "deploy_instructions",
        "verify_instructions",
        "workspace",
    }
)
# Stages a repository may go without: the task goes on as if the stage had ended well.
SKIPPABLE = (AgentType.DEPLOYER, AgentType.VERIFIER)
PROFILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\[\]-]{0,127}$")  # as the API's MODEL_PATTERN


class WorkflowFileError(ValueError):
    """The file cannot be used; the message names the file, the line and the field."""


class AgentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Annotated[str, Field(min_length=1, max_length=WORKFLOW_FILE_CAP)] | None = None
    model: str | None = None
    max_turns: Annotated[int, Field(ge=1, le=10_000)] | None = None
    budget_usd: Annotated[float, Field(gt=0, le=10_000)] | None = None
    # what the agent may use (domain/agent_tools.py checks the values)
    allowed_tools: Annotated[list[at.ToolPattern], Field(max_length=at.TOOLS_MAX)] | None = None
    disallowed_tools: Annotated[list[at.ToolPattern], Field(max_length=at.TOOLS_MAX)] | None = None
    permission_mode: at.PermissionMode | None = None
    mcp_servers: Annotated[dict[at.ServerName, at.McpServer], Field(max_length=at.SERVERS_MAX)] | None = None
    # an agent profile of the service's (`/api/profiles`) these settings lie over
    profile: Annotated[str, Field(pattern=PROFILE_NAME)] | None = None

    def over(self, base: AgentSettings) -> AgentSettings:
        """These settings, each one left unset taken from `base` (a profile's)."""
        own = self.model_dump(exclude_none=True)
        return AgentSettings.model_validate({**base.model_dump(exclude_none=True), **own})

    def tools(self) -> at.AgentTools:
        return at.AgentTools(
            allowed_tools=self.allowed_tools or [],
            disallowed_tools=self.disallowed_tools or [],
            permission_mode=self.permission_mode,
            mcp_servers=self.mcp_servers or {},
        )

    def within(self, max_turns: int, budget_usd: float | None) -> AgentSettings:
        """These settings never above the operator's limits (AGENT_MAX_TURNS, BUDGET_USD when set):
        whoever writes the repository may lower the service's limits, not raise them."""
        turns = None if self.max_turns is None else min(self.max_turns, max_turns)
        usd = self.budget_usd
        if usd is not None and budget_usd is not None:
            usd = min(usd, budget_usd)
        return self.model_copy(update={"max_turns": turns, "budget_usd": usd})

    @field_validator("prompt")
    @classmethod
    def _known_variables(cls, value: str | None) -> str | None:
        if value is not None:
            template_problem(value)
        return value

    @field_validator("model")
    @classmethod
    def _plain_model(cls, value: str | None) -> str | None:
        if value is not None and not _MODEL.match(value):
            raise ValueError("a model name is letters, digits and . _ : [ ] - (at most 128)")
        return value


class Agents(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    starter: AgentSettings | None = None
    coding: AgentSettings | None = None
    reviewer: AgentSettings | None = None
    deployer: AgentSettings | None = None
    verifier: AgentSettings | None = None
    auditor: AgentSettings | None = None


class Stages(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    skip: list[AgentType] = []

    @field_validator("skip")
    @classmethod
    def _skippable(cls, value: list[AgentType]) -> list[AgentType]:
        wrong = [t.value for t in value if t not in SKIPPABLE]
        if wrong:
            allowed = ", ".join(t.value for t in SKIPPABLE)
            raise ValueError(f"{', '.join(wrong)} cannot be skipped: only {allowed}")
        return value


class HookName(StrEnum):
    """When a workspace hook runs (README: "A repository's workflow file")."""

    AFTER_CREATE = "after_create"  # the task's checkout was just made
    BEFORE_RUN = "before_run"  # before each agent process starts in it
    AFTER_RUN = "after_run"  # after each agent process ends (a failure is logged)
    BEFORE_REMOVE = "before_remove"  # before the task's workspace is deleted (a failure is logged)

    @property
    def fatal(self) -> bool:
        """Whether its failure fails the agent (and so no CLI starts)."""
        return self in (HookName.AFTER_CREATE, HookName.BEFORE_RUN)


HOOK_COMMAND_CAP = 8 * 1024
HOOK_TIMEOUT_SECONDS = 120
HOOK_TIMEOUT_MAX_SECONDS = 3600
HookCommand = Annotated[str, Field(min_length=1, max_length=HOOK_COMMAND_CAP)]


class Hooks(BaseModel):
    """Shell commands run in the agent's sandbox (never in the service), each within `timeout_seconds`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_create: HookCommand | None = None
    before_run: HookCommand | None = None
    after_run: HookCommand | None = None
    before_remove: HookCommand | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=HOOK_TIMEOUT_MAX_SECONDS, strict=True)] = (
        HOOK_TIMEOUT_SECONDS
    )

    @field_validator("after_create", "before_run", "after_run", "before_remove")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("a hook command cannot hold a NUL character")
        return value

    def command(self, name: HookName) -> str | None:
        value: str | None = getattr(self, name.value)
        return value

    @property
    def any(self) -> bool:
        return any(self.command(name) for name in HookName)


# What a stage's retry policy may name in `no_retry_on`: the end reasons a step is retried on, and an
# agent that completed without a valid outcome (`invalid_outcome`: any; `invalid_outcome_twice`: the
# second in a row of the same step). A kill by a person, a shutdown, a rate limit and a run that never
# started are never in it: the first two end the step, the last two have their own rule (resume, again).
_NOT_RETRIED = (
    EndReason.COMPLETED,
    EndReason.KILLED,
    EndReason.SHUTDOWN,
    EndReason.RATE_LIMITED,
    EndReason.NEVER_STARTED,
)
RETRYABLE_ENDS = tuple(reason.value for reason in EndReason if reason not in _NOT_RETRIED)
INVALID_OUTCOME = "invalid_outcome"
INVALID_OUTCOME_TWICE = "invalid_outcome_twice"
PERMISSION_REFUSED = "permission_refused"  # the CLI refused the run a tool (its permission mode)
RETRY_ATTEMPTS_MAX = 5
RETRY_BACKOFF_MAX_SECONDS = 3600


class StageRetry(BaseModel):
    """How often a stage's step runs before its failure fails the task, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: Annotated[int, Field(ge=1, le=RETRY_ATTEMPTS_MAX, strict=True)] = 1  # runs in all
    backoff_seconds: Annotated[float, Field(ge=0, le=RETRY_BACKOFF_MAX_SECONDS)] = 30
    no_retry_on: list[str] = ["budget_exceeded", "invalid_outcome_twice", PERMISSION_REFUSED]
    resume: bool = False  # a retry continues the ended run's CLI session (when it has one)

    @field_validator("no_retry_on")
    @classmethod
    def _known_ends(cls, value: list[str]) -> list[str]:
        known = (*RETRYABLE_ENDS, INVALID_OUTCOME, INVALID_OUTCOME_TWICE, PERMISSION_REFUSED)
        wrong = [v for v in value if v not in known]
        if wrong:
            raise ValueError(
                f"unknown end(s) {', '.join(map(repr, wrong))[:200]}: known are {', '.join(known)}"
            )
        return value

    def delay_before_next(
        self, ended_run: int, why: str, invalid_before: int, *, refused: bool = False
    ) -> float | None:
        """Seconds before the step runs again after its `ended_run`-th run ended for `why` (an end
        reason, or INVALID_OUTCOME); `invalid_before`: how many runs of the step before it ended so in a
        row; `refused`: the CLI refused the run a tool. None: no retry."""
        if ended_run >= self.attempts or why in self.no_retry_on:
            return None
        if refused and PERMISSION_REFUSED in self.no_retry_on:
            return None
        if why == INVALID_OUTCOME:
            if invalid_before >= 1 and INVALID_OUTCOME_TWICE in self.no_retry_on:
                return None
        elif why not in RETRYABLE_ENDS:
            return None
        return float(min(self.backoff_seconds * 2 ** (ended_run - 1), RETRY_BACKOFF_MAX_SECONDS))


class Retries(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # runs of one task that produced nothing its step could use and were run again, across its stages
    max_empty_runs: Annotated[int, Field(ge=0, le=50, strict=True)] = 5

    starter: StageRetry | None = None
    coding: StageRetry | None = None
    reviewer: StageRetry | None = None
    deployer: StageRetry | None = None
    verifier: StageRetry | None = None
    auditor: StageRetry | None = None


class WorkflowFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: Agents = Agents()
    stages: Stages = Stages()
    require_approval: str | None = None
    hooks: Hooks = Hooks()
    retry: Retries = Retries()

    @field_validator("require_approval")
    @classmethod
    def _gates(cls, value: str | None) -> str | None:
        if value is not None:
            parse_gates(value)
        return value

    def agent(self, agent_type: AgentType) -> AgentSettings:
        return getattr(self.agents, agent_type.value) or AgentSettings()

    def gates(self, default: frozenset[Gate]) -> frozenset[Gate]:
        """The operator's gates and the file's: a repository may add a gate, never lift one."""
        return default if self.require_approval is None else default | parse_gates(self.require_approval)

    def retry_of(self, agent_type: AgentType) -> StageRetry:
        return getattr(self.retry, agent_type.value) or StageRetry()

    def skips(self, agent_type: AgentType) -> bool:
        return agent_type in self.stages.skip


DEFAULT = WorkflowFile()


def template_problem(text: str) -> None:
    """ValueError naming what a prompt template names beyond the documented variables, or a `$` that
    starts no variable (written `$$` for a dollar sign)."""
    template = Template(text)
    if not template.is_valid():
        match = next(m for m in template.pattern.finditer(text) if m.group("invalid") is not None)
        line = text.count("\n", 0, match.start()) + 1
        raise ValueError(f"a `$` on line {line} of the prompt starts no variable ($$ writes a dollar sign)")
    unknown = sorted(set(template.get_identifiers()) - TEMPLATE_VARIABLES)
    if unknown:
        known = ", ".join(sorted(TEMPLATE_VARIABLES))
        raise ValueError(f"unknown variable(s) {', '.join('$' + u for u in unknown)}: known are {known}")


def fill(template: str, context: dict[str, str]) -> str:
    """A checked template filled by name from `context` only: no attribute access, no format specs."""
    values = {name: context.get(name, "") for name in TEMPLATE_VARIABLES}
    return Template(template).substitute(values).strip() + "\n"


def parse(text: str, source: str = WORKFLOW_FILE) -> WorkflowFile:
    """The file's settings; WorkflowFileError naming `source`, the line and the field otherwise."""
    if len(text.encode()) > WORKFLOW_FILE_CAP:
        raise WorkflowFileError(f"{source}: larger than {WORKFLOW_FILE_CAP} bytes")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WorkflowFileError(f"{source}: not valid TOML: {exc}") from None
    try:
        return WorkflowFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(part) for part in first["loc"])
        field = _printable(".".join(loc))[:200] or "(top level)"
        line = key_line(text, loc)
        where = f"line {line}" if line else "somewhere"
        raise WorkflowFileError(f"{source}, {where}, field {field}: {_message(first)}") from None


def _printable(text: str) -> str:
    """A key of the file as it may appear in a task's reason: control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _dotted(raw: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in raw.split("."))


def key_line(text: str, loc: tuple[str, ...]) -> int | None:
    """The line (from 1) of the TOML key or table at `loc`, or of its nearest enclosing key or table
    that the text names; None when none is found (e.g. a field missing from the file)."""
    best: tuple[int, int] | None = None  # (how many parts of loc matched, line)
    table: tuple[str, ...] = ()
    in_string = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.count('"""') % 2 or line.count("'''") % 2:
            was_in_string = in_string
            in_string = not in_string
            if was_in_string:
                continue
        elif in_string:
            continue
        header = _HEADER.match(line)
        if header:
            table = _dotted(header.group(1))
            path = table
        else:
            key = _KEY.match(line)
            if key is None:
                continue
            path = table + _dotted(key.group(1))
        matched = _common(path, loc)
        if matched == len(path) and matched and (best is None or matched > best[0]):
            best = (matched, number)
    return best[1] if best else None


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class StageSkipped:
    """A stage the repository's workflow file skips: what follows it instead (an event to emit as if
    the stage had ended well), or, with none, the task completes."""

    stage: AgentType
    then: EventType | None


# What a skipped stage's success would have been followed by (the verifier's: the task completes).
_AFTER = {AgentType.DEPLOYER: EventType.DEPLOY_COMPLETED, AgentType.VERIFIER: None}


def with_skips(reaction: Reaction, workflow: WorkflowFile) -> Reaction | StageSkipped:
    """The reaction to an event once the repository's skipped stages are taken out."""
    if isinstance(reaction, SpawnAgent) and workflow.skips(reaction.agent_type):
        return StageSkipped(reaction.agent_type, _AFTER[reaction.agent_type])
    return reaction


def has_mcp_servers(workflow: WorkflowFile) -> bool:
    return any(workflow.agent(t).mcp_servers for t in AgentType)


def unfilled_reference(workflow: WorkflowFile, text: str, allowed: frozenset[str]) -> str | None:
    """Why the file's MCP servers cannot start: the first `${env:NAME}` of any agent type that the
    service will not fill (NAME not in `allowed`), said with the file, the line and the field; None when
    every reference is allowed."""
    for agent_type in AgentType:
        try:
            at.check_references(workflow.agent(agent_type).mcp_servers or {}, allowed)
        except at.EnvReferenceError as exc:
            loc = ("agents", agent_type.value, *exc.field.split("."))
            return said_at(text, loc, str(exc).removeprefix(f"{exc.field}: "))
    return None


def said_at(text: str, loc: tuple[str, ...], message: str) -> str:
    """`message` about the field at `loc`, with the file and the line, as a task's reason."""
    line = key_line(text, loc)
    where = f"line {line}" if line else "somewhere"
    return f"{WORKFLOW_FILE}, {where}, field {_printable('.'.join(loc))}: {message}"
