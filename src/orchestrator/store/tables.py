"""The schema as SQLAlchemy Core tables. Migrations in `migrations/versions` create the same."""

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, MetaData, Table, Text

metadata = MetaData()

Id = BigInteger().with_variant(Integer(), "sqlite")

agents = Table(
    "agents",
    metadata,
    Column("id", Text, primary_key=True),
    Column("task_id", Text, index=True),
    Column("container_id", Text),
    Column("status", Text, nullable=False),
    Column("agent_type", Text, nullable=False),
    Column("started_at", Text),
    Column("completed_at", Text),
    Column("exit_code", Integer),
    Column("error", Text),
    Column("logs", Text),
    Column("metadata", Text),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("model", Text),
    Column("repo", Text),
    Column("workspace", Text),
    Column("timeout_seconds", Float, nullable=False),
    Column("max_turns", Integer, nullable=False),
    Column("retry_of", Text),
    Column("runtime", Text, nullable=False),
    Column("instance_id", Text),
    Column("pid", Integer),
    Column("run_dir", Text),
    Column("stdout_offset", BigInteger, nullable=False, server_default="0"),
    Column("stderr_offset", BigInteger, nullable=False, server_default="0"),
    Column("log_lines", BigInteger, nullable=False, server_default="0"),
    Column("session_id", Text),
    Column("cost_usd", Float),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("num_turns", Integer),
    Column("duration_ms", BigInteger),
    Column("flags", Text),
    Column("budget", Text),
    Column("resumed_session", Text),
    Column("config_dir", Text),
    Column("end_reason", Text),
    Column("kill_requested_at", Text),
    Index("ix_agents_status", "status"),
    Index("ix_agents_created_at_id", "created_at", "id"),
)

agent_logs = Table(
    "agent_logs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("agent_id", Text, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    Column("timestamp", Text, nullable=False),
    Column("stream", Text, nullable=False),
    Column("content", Text, nullable=False),
    Index("ix_agent_logs_agent_id_id", "agent_id", "id"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("description", Text),
    Column("status", Text, nullable=False),
    Column("repo", Text),
    Column("repos", Text),
    Column("execution_plan", Text),
    Column("assigned_agent_id", Text),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("error", Text),
    Column("branch", Text),
    Column("pr_number", Integer),
    Column("pr_url", Text),
    Column("parent_task_id", Text),
    Column("review_rounds", Integer, nullable=False, server_default="0"),
    Column("workflow_step", Text),
    Column("budget", Text),
    Column("depends_on", Text),
    Column("waiting_for", Text),
    Column("waiting_since", Text),
    Column("head_sha", Text),
    Index("ix_tasks_status", "status"),
    Index("ix_tasks_created_at_id", "created_at", "id"),
    Index("ix_tasks_waiting_for", "waiting_for"),
)

queue = Table(
    "queue",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("task_id", Text, ForeignKey("tasks.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("queued_at", Text, nullable=False),
    Column("completed_at", Text),
    Column("started_at", Text),
    Column("agent_id", Text),
    Column("instance_id", Text),
    Column("error", Text),
    Column("retry_at", Text),
    Column("blocked_reason", Text),
    Index("ix_queue_status_position", "status", "position"),
    Index("ix_queue_task_id", "task_id"),
)

queue_settings = Table(
    "queue_settings",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("task_id", Text),
    Column("agent_id", Text),
    Column("payload", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("processed_at", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Text),
    Column("error", Text),
    Column("instance_id", Text),
    Column("spawned_agent_id", Text),
    Column("seq", BigInteger),
    Index("ix_events_status_created", "status", "created_at"),
    Index("ux_events_seq", "seq", unique=True),
    Index("ix_events_task_id", "task_id"),
)

instances = Table(
    "instances",
    metadata,
    Column("id", Text, primary_key=True),
    Column("hostname", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Text, nullable=False),
    Column("heartbeat_at", Text, nullable=False),
    Column("stopped_at", Text),
)

service_logs = Table(
    "service_logs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("timestamp", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("logger", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("context", Text),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Text, primary_key=True),
    Column("url", Text, nullable=False),
    Column("event_types", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", Text, nullable=False),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_type", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Text, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("webhook_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("delivered_at", Text),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("attempt_log", Text),
    Column("lease_owner", Text),
    Column("lease_until", Text),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_webhook", "webhook_id", "id"),
)

# Inbound GitHub webhooks, one row per X-GitHub-Delivery taken: a redelivery finds its row and does nothing.
github_deliveries = Table(
    "github_deliveries",
    metadata,
    Column("delivery_id", Text, primary_key=True),
    Column("event", Text, nullable=False),
    Column("received_at", Text, nullable=False),
)

# One task per labelled issue, and which comments the service has posted on the issue.
github_issues = Table(
    "github_issues",
    metadata,
    Column("repo", Text, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("task_id", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("pr_commented_at", Text),
    Column("end_commented_at", Text),
)

# Agent profiles: named settings over a base agent type (domain/profiles.py), set by the API.
profiles = Table(
    "profiles",
    metadata,
    Column("name", Text, primary_key=True),
    Column("agent_type", Text, nullable=False),
    Column("settings", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)
