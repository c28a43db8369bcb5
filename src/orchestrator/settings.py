"""Every setting of the service, read once from the environment."""

from __future__ import annotations

import re
import shutil
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from platformdirs import user_data_dir
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from orchestrator.agents.command import never_passed
from orchestrator.domain.egress import model_api, parse_allow
from orchestrator.domain.git_url import DEFAULT_GIT_URL, check_git_base_url
from orchestrator.domain.hosts import is_loopback_host
from orchestrator.domain.pr_loop import Gate, parse_gates
from orchestrator.domain.types import AgentType
from orchestrator.runtimes.ownership import parse_user
from orchestrator.webhooks.targets import AllowedHost, TargetPolicy, parse_allowed_host

CLAUDE_CODE_VERSION = "2.1.328"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_INTAKE_REPO = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]{0,38}/)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def default_home() -> Path:
    return Path(user_data_dir("orchestrator", appauthor=False))


def claude_install_dir(version: str = CLAUDE_CODE_VERSION) -> Path:
    """Where `orchestrator install-claude` puts the pinned CLI; independent of the data directory."""
    return default_home() / "claude-code" / version


def installed_claude(version: str = CLAUDE_CODE_VERSION) -> Path:
    return claude_install_dir(version) / "node_modules" / ".bin" / "claude"


def _default_claude_bin() -> str:
    pinned = installed_claude()
    if pinned.exists():
        return str(pinned)
    return shutil.which("claude") or "claude"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", validation_alias="HOST")
    port: int = Field(3020, ge=1, le=65535, validation_alias="PORT")
    data_dir: Path = Field(default_factory=default_home, validation_alias="ORCHESTRATOR_DATA_DIR")
    database_path: Path | None = Field(None, validation_alias="DATABASE_PATH")
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    event_dir: Path | None = Field(None, validation_alias="EVENT_DIR")
    projects_dir: Path | None = Field(None, validation_alias="PROJECTS_DIR")
    workspaces_dir: Path | None = Field(None, validation_alias="WORKSPACES_DIR")
    runs_dir: Path | None = Field(None, validation_alias="RUNS_DIR")

    github_token: str | None = Field(None, validation_alias="GITHUB_TOKEN", repr=False)
    github_owner: str = Field("Kroket93", validation_alias="GITHUB_OWNER")
    github_api_url: str = Field("https://api.github.com", validation_alias="GITHUB_API_URL")
    github_git_url: str = Field(DEFAULT_GIT_URL, validation_alias="GITHUB_GIT_URL")

    enable_queue_processor: bool = Field(True, validation_alias="ENABLE_QUEUE_PROCESSOR")
    use_multi_agent_events: bool = Field(False, validation_alias="USE_MULTI_AGENT_EVENTS")

    claude_bin: str = Field(default_factory=_default_claude_bin, validation_alias="CLAUDE_BIN")
    claude_model: str | None = Field(None, validation_alias="CLAUDE_MODEL")
    agent_max_turns: int = Field(50, ge=1, le=10_000, validation_alias="AGENT_MAX_TURNS")
    agent_timeout_seconds: float = Field(3600.0, gt=0, validation_alias="AGENT_TIMEOUT_SECONDS")
    agent_timeout_overrides: Annotated[dict[AgentType, float], NoDecode] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("AGENT_TIMEOUT_OVERRIDES"),
    )
    agent_kill_grace_seconds: float = Field(5.0, ge=0, le=600, validation_alias="AGENT_KILL_GRACE_SECONDS")
    agent_runtime: Literal["host", "docker", "kubernetes"] = Field("host", validation_alias="AGENT_RUNTIME")
    # isolation and limits of agents (runtimes/): limits apply to every runtime as far as it can
    agent_sandbox: Literal["auto", "none", "bwrap"] = Field("auto", validation_alias="AGENT_SANDBOX")
    bwrap_bin: str = Field("/usr/bin/bwrap", validation_alias="BWRAP_BIN")
    agent_env_passthrough: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias=AliasChoices("AGENT_ENV_PASSTHROUGH")
    )
    agent_memory_mb: int | None = Field(None, ge=16, validation_alias="AGENT_MEMORY_MB")
    agent_cpus: float | None = Field(None, gt=0, le=1024, validation_alias="AGENT_CPUS")
    agent_pids: int | None = Field(None, ge=8, validation_alias="AGENT_PIDS")
    agent_image: str = Field(f"orchestrator-agent:{CLAUDE_CODE_VERSION}", validation_alias="AGENT_IMAGE")
    agent_claude_bin: str | None = Field("claude", validation_alias="AGENT_CLAUDE_BIN")
    agent_mount_claude: bool = Field(False, validation_alias="AGENT_MOUNT_CLAUDE")
    docker_host: str | None = Field(None, validation_alias="DOCKER_HOST")
    # uid[:gid] of Docker and Kubernetes agents; unset: the service's own, or 1000:1000 when it is root
    agent_container_user: str | None = Field(None, validation_alias="AGENT_CONTAINER_USER")

    agent_docker_network: str = Field("none", validation_alias="AGENT_DOCKER_NETWORK")
    # what agents may reach besides the model API (domain/egress.py); enforced inside bwrap and Docker
    agent_egress_allow: str = Field("", validation_alias="AGENT_EGRESS_ALLOW")
    anthropic_base_url: str = Field("https://api.anthropic.com", validation_alias="ANTHROPIC_BASE_URL")
    kubernetes_api_url: str | None = Field(None, validation_alias="KUBERNETES_API_URL")
    kubernetes_namespace: str = Field("orchestrator", validation_alias="KUBERNETES_NAMESPACE")
    kubernetes_secret_name: str | None = Field(
        "orchestrator-agent-env", validation_alias="KUBERNETES_SECRET_NAME"
    )
    kubernetes_workspace_pvc: str | None = Field(None, validation_alias="KUBERNETES_WORKSPACE_PVC")
    kubernetes_pvc_mount: Path | None = Field(None, validation_alias="KUBERNETES_PVC_MOUNT")
    kubernetes_job_ttl_seconds: int = Field(3600, ge=0, validation_alias="KUBERNETES_JOB_TTL_SECONDS")
    kubernetes_agent_service_account: str | None = Field(
        None, validation_alias="KUBERNETES_AGENT_SERVICE_ACCOUNT"
    )

    agent_stall_seconds: float | None = Field(None, gt=0, validation_alias="AGENT_STALL_SECONDS")
    agent_stall_grace_seconds: float = Field(30.0, ge=0, validation_alias="AGENT_STALL_GRACE_SECONDS")
    agent_stall_action: Literal["flag", "kill", "kill_resume"] = Field(
        "flag", validation_alias="AGENT_STALL_ACTION"
    )
    agent_loop_repeats: int | None = Field(5, ge=2, validation_alias="AGENT_LOOP_REPEATS")
    budget_usd: float | None = Field(None, gt=0, validation_alias="BUDGET_USD")
    budget_turns: int | None = Field(None, ge=1, validation_alias="BUDGET_TURNS")
    budget_wall_seconds: float | None = Field(None, gt=0, validation_alias="BUDGET_WALL_SECONDS")
    price_input_per_mtok: float = Field(4.0, ge=0, validation_alias="PRICE_INPUT_PER_MTOK")
    price_output_per_mtok: float = Field(20.0, ge=0, validation_alias="PRICE_OUTPUT_PER_MTOK")

    spawn_rate_per_minute: int | None = Field(300, ge=1, validation_alias="SPAWN_RATE_PER_MINUTE")
    rate_limit_backoff_seconds: float = Field(60.0, gt=0, validation_alias="RATE_LIMIT_BACKOFF_SECONDS")
    rate_limit_max_per_task: int = Field(10, ge=1, le=1000, validation_alias="RATE_LIMIT_MAX_PER_TASK")

    max_review_rounds: int = Field(3, ge=0, le=50, validation_alias="MAX_REVIEW_ROUNDS")
    workspace_cleanup: Literal["never", "on_success", "on_end"] = Field(
        "never", validation_alias="WORKSPACE_CLEANUP"
    )
    event_max_attempts: int = Field(4, ge=1, le=50, validation_alias="EVENT_MAX_ATTEMPTS")
    event_inbox_poll_seconds: float = Field(0.5, gt=0, le=60, validation_alias="EVENT_INBOX_POLL_SECONDS")
    merge_method: Literal["merge", "squash", "rebase"] = Field("squash", validation_alias="MERGE_METHOD")
    require_approval: str = Field("none", validation_alias="REQUIRE_APPROVAL")
    checks_timeout_seconds: float = Field(3600.0, gt=0, validation_alias="CHECKS_TIMEOUT_SECONDS")
    checks_appear_seconds: float = Field(20.0, ge=0, validation_alias="CHECKS_APPEAR_SECONDS")
    github_poll_seconds: float = Field(30.0, gt=0, le=3600, validation_alias="GITHUB_POLL_SECONDS")

    webhook_allow_private: bool = Field(False, validation_alias="WEBHOOK_ALLOW_PRIVATE")
    webhook_allow_http: bool = Field(False, validation_alias="WEBHOOK_ALLOW_HTTP")
    webhook_allow_hosts: Annotated[tuple[AllowedHost, ...], NoDecode] = Field(
        (), validation_alias="WEBHOOK_ALLOW_HOSTS"
    )
    webhook_hosts_only: bool = Field(False, validation_alias="WEBHOOK_HOSTS_ONLY")

    api_token: str | None = Field(None, validation_alias="ORCHESTRATOR_API_TOKEN", repr=False)
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="ALLOWED_HOSTS")
    api_max_body_bytes: int = Field(1_048_576, ge=1024, validation_alias="API_MAX_BODY_BYTES")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", validation_alias="LOG_LEVEL")
    instance_id: str | None = Field(None, validation_alias="INSTANCE_ID")
    instance_heartbeat_seconds: float = Field(2.0, gt=0, le=60, validation_alias="INSTANCE_HEARTBEAT_SECONDS")
    instance_lapse_seconds: float = Field(10.0, gt=0, le=600, validation_alias="INSTANCE_LAPSE_SECONDS")

    log_flush_interval_seconds: float = Field(0.02, gt=0, le=5, validation_alias="LOG_FLUSH_INTERVAL_SECONDS")
    log_batch_max_lines: int = Field(1000, ge=1, le=100_000, validation_alias="LOG_BATCH_MAX_LINES")
    log_line_max_bytes: int = Field(262_144, ge=1024, validation_alias="LOG_LINE_MAX_BYTES")
    output_inotify: bool = Field(True, validation_alias="OUTPUT_INOTIFY")
    output_poll_max_seconds: float = Field(0.025, gt=0, le=1, validation_alias="OUTPUT_POLL_MAX_SECONDS")
    output_poll_unwatched_seconds: float = Field(
        0.25, gt=0, le=5, validation_alias="OUTPUT_POLL_UNWATCHED_SECONDS"
    )

    github_webhook_secret: str | None = Field(None, validation_alias="GITHUB_WEBHOOK_SECRET", repr=False)
    github_intake_label: str | None = Field(None, max_length=50, validation_alias="GITHUB_INTAKE_LABEL")
    github_intake_repos: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="GITHUB_INTAKE_REPOS"
    )
    github_delivery_retention_hours: float = Field(
        72.0, gt=0, le=24 * 366, validation_alias="GITHUB_DELIVERY_RETENTION_HOURS"
    )
    # the service's variables a workflow file's MCP server may name as ${env:NAME} (domain/agent_tools.py)
    mcp_env_allowlist: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="MCP_ENV_ALLOWLIST")
    changes_poll_seconds: float = Field(0.5, gt=0, le=60, validation_alias="CHANGES_POLL_SECONDS")
    changes_max_clients: int = Field(100, ge=1, le=10_000, validation_alias="CHANGES_MAX_CLIENTS")

    @field_validator("agent_timeout_overrides", mode="before")
    @classmethod
    def _parse_overrides(cls, value: object) -> object:
        """`coding=1800,reviewer=600`: per-type timeouts in seconds."""
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            key, sep, number = part.partition("=")
            if not sep:
                raise ValueError(f"expected type=seconds, got {part!r}")
            pairs[key.strip()] = number.strip()
        return pairs

    @field_validator("agent_container_user", mode="before")
    @classmethod
    def _container_user(cls, value: object) -> object:
        if isinstance(value, str) and value.strip():
            parse_user(value)  # raises ValueError naming the problem
            return value.strip()
        return None if isinstance(value, str) else value

    @field_validator("require_approval")
    @classmethod
    def _check_gates(cls, value: str) -> str:
        parse_gates(value)
        return value

    @property
    def approval_gates(self) -> frozenset[Gate]:
        return parse_gates(self.require_approval)

    @field_validator("github_git_url")
    @classmethod
    def _git_url(cls, value: str) -> str:
        return check_git_base_url(value)

    @field_validator("agent_egress_allow")
    @classmethod
    def _check_egress_allow(cls, value: str) -> str:
        parse_allow(value)
        return value

    @field_validator("anthropic_base_url")
    @classmethod
    def _check_model_url(cls, value: str) -> str:
        model_api(value)
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: object) -> object:
        """`orchestrator.example.com,proxy.lan:8080`: Host names the API answers besides its own."""
        if not isinstance(value, str):
            return value
        hosts = tuple(h.strip().lower() for h in value.split(",") if h.strip())
        for host in hosts:
            if host != "*" and (any(c in host for c in "/@ \t") or host.startswith(":")):
                raise ValueError(f"expected host names like example.com or example.com:8080, got {host!r}")
        return hosts

    @field_validator("agent_env_passthrough", "mcp_env_allowlist", mode="before")
    @classmethod
    def _parse_passthrough(cls, value: object) -> object:
        """`AWS_REGION,AWS_PROFILE`: extra variables an agent gets; never the service's own secrets."""
        names = [n.strip() for n in value.split(",") if n.strip()] if isinstance(value, str) else value
        if not isinstance(names, list | tuple):
            return value
        for name in names:
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if never_passed(name):
                raise ValueError(f"{name} is a secret of the service and is never passed to agents")
        return tuple(names)

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _parse_allow_hosts(cls, value: object) -> object:
        """`hooks.internal,127.0.0.1:8080,[::1]:9000`: hosts, optionally with a port."""
        if not isinstance(value, str):
            return value
        return tuple(parse_allowed_host(part) for part in value.split(",") if part.strip())

    @field_validator("github_intake_repos", mode="before")
    @classmethod
    def _parse_intake_repos(cls, value: object) -> object:
        if isinstance(value, str):
            repos = tuple(dict.fromkeys(r.strip() for r in value.split(",") if r.strip()))
            for repo in repos:
                if not _INTAKE_REPO.fullmatch(repo) or ".." in repo:
                    raise ValueError(f"{repo[:100]!r} is not a repository ('name' or 'owner/name')")
            return repos
        return value

    @field_validator(
        "claude_model",
        "api_token",
        "github_token",
        "instance_id",
        "github_webhook_secret",
        "github_intake_label",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.database_file}"

    @property
    def database_file(self) -> Path:
        return self.database_path or self.data_dir / "orchestrator.db"

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite file the service works on, if it works on one."""
        url = self.resolved_database_url
        if not url.startswith("sqlite:///") or url.endswith(":memory:"):
            return None
        return Path(url.removeprefix("sqlite:///"))

    @property
    def resolved_event_dir(self) -> Path:
        return self.event_dir or self.data_dir / "events"

    @property
    def resolved_projects_dir(self) -> Path:
        return self.projects_dir or self.data_dir / "projects"

    @property
    def resolved_workspaces_dir(self) -> Path:
        return self.workspaces_dir or self.data_dir / "workspaces"

    @property
    def mirrors_dir(self) -> Path:
        return self.data_dir / "mirrors"

    @property
    def resolved_runs_dir(self) -> Path:
        return self.runs_dir or self.data_dir / "runs"

    @property
    def webhook_policy(self) -> TargetPolicy:
        return TargetPolicy(
            self.webhook_allow_private,
            self.webhook_allow_http,
            self.webhook_allow_hosts,
            self.webhook_hosts_only,
        )

    @property
    def mcp_env_names(self) -> frozenset[str]:
        """What `${env:NAME}` may name: MCP_ENV_ALLOWLIST, never one of the service's own secrets (refused
        when the setting is read, and left out here whatever the list holds)."""
        return frozenset(n for n in self.mcp_env_allowlist if not never_passed(n))

    def timeout_for(self, agent_type: AgentType) -> float:
        return self.agent_timeout_overrides.get(agent_type, self.agent_timeout_seconds)

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)


class SettingsError(Exception):
    """A wrong setting, said in one line that names the variable."""


_ALIASES = {
    name: (field.validation_alias if isinstance(field.validation_alias, str) else name.upper())
    for name, field in Settings.model_fields.items()
}
_ALIASES["agent_timeout_overrides"] = "AGENT_TIMEOUT_OVERRIDES"
_ALIASES["agent_env_passthrough"] = "AGENT_ENV_PASSTHROUGH"


def load_settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        variable = _ALIASES.get(field, field)
        raise SettingsError(f"{variable}: {first['msg']} (got {first.get('input')!r})") from None
    if not settings.is_loopback and not settings.api_token:
        raise SettingsError(
            f"HOST: refusing to listen on non-loopback {settings.host!r} without ORCHESTRATOR_API_TOKEN"
        )
    return settings
