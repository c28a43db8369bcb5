"""The API's wire models, shared by the server and the client."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.events import INTERNAL_EVENT_TYPES, WEBHOOK_EVENTS, EventType
from orchestrator.domain.types import AgentStatus, AgentType, QueueItemStatus, TaskStatus
from orchestrator.domain.workflow_file import PROFILE_NAME

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99})?$"
TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\[\]-]{0,127}$"
MAX_PROMPT_CHARS = 200_000
MAX_SQL_INT = 2**63 - 1  # the largest integer a database column holds
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_PAYLOAD_DEPTH = 32


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_PAYLOAD_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


class BudgetModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    usd: float | None = Field(None, gt=0, le=100_000)
    turns: int | None = Field(None, ge=1, le=100_000)
    wall_seconds: float | None = Field(None, gt=0, le=30 * 24 * 3600)


class SpawnBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget: BudgetModel | None = None
    agent_type: AgentType
    task_id: str | None = Field(None, pattern=TASK_ID_PATTERN)
    prompt: str | None = Field(None, min_length=1, max_length=MAX_PROMPT_CHARS)
    repo: str | None = Field(None, pattern=NAME_PATTERN)
    model: str | None = Field(None, pattern=MODEL_PATTERN)
    timeout_seconds: float | None = Field(None, gt=0, le=7 * 24 * 3600)
    max_turns: int | None = Field(None, ge=1, le=10_000)
    profile: str | None = Field(None, pattern=PROFILE_NAME)  # an agent profile over agent_type

    @field_validator("prompt")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL bytes")
        return value


class Agent(BaseModel):
    id: str
    task_id: str | None
    agent_type: AgentType
    status: AgentStatus
    container_id: str | None
    runtime: str
    instance_id: str | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    exit_code: int | None
    error: str | None
    model: str | None
    repo: str | None
    workspace: str | None
    timeout_seconds: float
    max_turns: int
    retry_of: str | None
    session_id: str | None
    cost_usd: float | None
    input_tokens: int | None
    output_tokens: int | None
    num_turns: int | None
    duration_ms: int | None
    log_lines: int
    metadata: dict[str, Any]
    flags: list[dict[str, Any]] = Field(default_factory=list)
    budget: BudgetModel | None = None
    resumed_session: str | None = None
    end_reason: EndReason | None = None


class AgentDetail(Agent):
    prompt: str


class RetryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resume: bool = False


class AgentPage(BaseModel):
    items: list[Agent]
    total: int
    limit: int
    offset: int


class ActiveAgents(BaseModel):
    ids: list[str]


class Analytics(BaseModel):
    total: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    success_rate: float | None
    mean_duration_ms: float | None
    total_cost_usd: float
    total_input_tokens: int
    total_output_tokens: int
    running_here: int


class LogLine(BaseModel):
    id: int
    agent_id: str
    timestamp: str
    stream: str
    content: str


class LogPage(BaseModel):
    agent_id: str
    status: AgentStatus
    items: list[LogLine]
    next_after: int
    has_more: bool


class Health(BaseModel):
    """Without the token only `status`: instance, paths and error texts are for authorised callers."""

    status: str
    version: str | None = None
    instance_id: str | None = None
    database: str | None = None
    runtime: str | None = None
    claude: str | None = None
    running_agents: int | None = None
    agent_egress: str | None = None  # what agents can reach on the network (runtimes/factory.egress_state)
    sandbox: str | None = Field(None, description="how agents are boxed in: bwrap, none, docker, kubernetes")
    warnings: list[str] | None = Field(None, description="what weakens the service, e.g. no sandbox")


class ErrorBody(BaseModel):
    detail: str


def _without_nul(value: str | None) -> str | None:
    """A task's text becomes an agent's prompt, which cannot carry NUL, and PostgreSQL text cannot hold it."""
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    return value


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, pattern=TASK_ID_PATTERN)
    title: str = Field(min_length=1, max_length=500)
    description: str | None = Field(None, max_length=100_000)
    repo: str | None = Field(None, pattern=NAME_PATTERN)
    repos: list[Annotated[str, Field(pattern=NAME_PATTERN)]] | None = Field(None, max_length=20)
    priority: int = Field(0, ge=-1000, le=1000)
    depends_on: list[Annotated[str, Field(pattern=TASK_ID_PATTERN)]] = Field(
        default_factory=list, max_length=50
    )
    budget: BudgetModel | None = None

    @field_validator("title", "description")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        return _without_nul(value)


class TaskUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=500)
    description: str | None = Field(None, max_length=100_000)
    repo: str | None = Field(None, pattern=NAME_PATTERN)
    repos: list[Annotated[str, Field(pattern=NAME_PATTERN)]] | None = Field(None, max_length=20)
    priority: int | None = Field(None, ge=-1000, le=1000)
    status: TaskStatus | None = None
    depends_on: list[Annotated[str, Field(pattern=TASK_ID_PATTERN)]] | None = Field(None, max_length=50)
    budget: BudgetModel | None = None

    @field_validator("title", "description")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        return _without_nul(value)


class Task(BaseModel):
    id: str
    title: str
    description: str | None
    status: TaskStatus
    repo: str | None
    repos: list[str]
    priority: int
    execution_plan: Any | None
    assigned_agent_id: str | None
    error: str | None
    branch: str | None
    pr_number: int | None
    pr_url: str | None
    parent_task_id: str | None
    depends_on: list[str] = Field(default_factory=list)
    budget: BudgetModel | None = None
    workflow_step: str | None = None
    review_rounds: int = 0
    waiting_for: str | None = Field(
        None, description="checks | mergeable | approval:merge | approval:deploy; null when not waiting"
    )
    head_sha: str | None = None
    created_at: str
    updated_at: str


class Rejection(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class TaskPage(BaseModel):
    items: list[Task]
    total: int
    limit: int
    offset: int


class QueueItem(BaseModel):
    id: int
    task_id: str
    title: str | None = None
    position: int
    status: QueueItemStatus
    queued_at: str
    started_at: str | None
    completed_at: str | None
    agent_id: str | None
    instance_id: str | None
    error: str | None
    retry_at: str | None = None
    blocked_reason: str | None = None


class Event(BaseModel):
    id: str
    type: str
    task_id: str | None
    agent_id: str | None
    payload: dict[str, Any]
    status: str
    created_at: str
    processed_at: str | None
    attempts: int
    error: str | None


class TaskDetail(Task):
    agents: list[Agent]
    events: list[Event]
    queue: list[QueueItem]


class QueueSettingsModel(BaseModel):
    paused: bool
    stop_on_failure: bool
    max_concurrent: int
    max_concurrent_per_repo: int | None = None


class QueueStatus(BaseModel):
    items: list[QueueItem]
    completed: list[QueueItem]
    settings: QueueSettingsModel
    pause_reason: str | None
    parked_until: str | None = None
    processing: int
    queued: int


class QueueSettingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=64)
    value: bool | int | str | None


class Cleared(BaseModel):
    removed: int


EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, pattern=EVENT_ID_PATTERN)
    type: EventType
    task_id: str | None = Field(None, pattern=TASK_ID_PATTERN)
    agent_id: str | None = Field(None, pattern=r"^[a-z]+-[0-9a-f]{8}$")
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("payload")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _depth(value) > MAX_PAYLOAD_DEPTH:
            raise ValueError(f"nested deeper than {MAX_PAYLOAD_DEPTH} levels")
        size = len(json.dumps(value, ensure_ascii=False).encode())
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"{size} bytes, more than {MAX_PAYLOAD_BYTES}")
        return value

    @field_validator("type")
    @classmethod
    def _public(cls, value: EventType) -> EventType:
        if value in INTERNAL_EVENT_TYPES:
            raise ValueError(f"{value.value} is written by the service only")
        return value


class EventPage(BaseModel):
    items: list[Event]
    total: int
    limit: int
    offset: int


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    event_types: list[str] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS))
    secret: str = Field(min_length=8, max_length=512)

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in WEBHOOK_EVENTS]
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {', '.join(WEBHOOK_EVENTS)}")
        return list(dict.fromkeys(value))


class Webhook(BaseModel):
    id: str
    url: str
    event_types: list[str]
    created_at: str


class Delivery(BaseModel):
    id: int
    webhook_id: str
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: str
    created_at: str
    delivered_at: str | None
    last_status_code: int | None
    last_error: str | None
    attempt_log: list[dict[str, Any]]


class ProfileModel(BaseModel):
    """An agent profile as the API gives it: `settings` holds the keys of `[agents.<type>]` in a workflow
    file that the profile sets (`${env:NAME}` references as written, never their values)."""

    name: str
    agent_type: AgentType
    settings: dict[str, Any]
    created_at: str
    updated_at: str
