"""Everything the service is made of, built once from Settings."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from orchestrator.agents.log_bus import LogBus
from orchestrator.agents.log_writer import LogWriter
from orchestrator.agents.manager import AgentManager
from orchestrator.domain.events import RetryPolicy
from orchestrator.domain.rate import SpawnRate
from orchestrator.domain.redact import Redactor
from orchestrator.forge.github import GitHubClient
from orchestrator.forge.issues import Issues
from orchestrator.forge.mirror import Mirrors
from orchestrator.forge.publisher import Publisher
from orchestrator.intake.issues import IssueIntake
from orchestrator.intake.pull_news import PullNews
from orchestrator.queue.processor import QueueProcessor
from orchestrator.queue.runners import DirectRunner, TaskRunner, WorkflowRunner
from orchestrator.runtimes.base import Runtime
from orchestrator.runtimes.factory import Isolation, isolation, make_runtime
from orchestrator.settings import Settings
from orchestrator.store.agents import AgentStore
from orchestrator.store.db import Database
from orchestrator.store.events import EventStore
from orchestrator.store.github_intake import IntakeStore
from orchestrator.store.logs import LogStore
from orchestrator.store.profiles import ProfileStore
from orchestrator.store.queue import QueueStore
from orchestrator.store.tasks import TaskStore
from orchestrator.store.webhooks import WebhookStore
from orchestrator.tasks.queue_control import QueueControl
from orchestrator.webhooks.deliverer import Deliverer
from orchestrator.workflow.inbox import Inbox
from orchestrator.workflow.pr_watch import PRWatcher
from orchestrator.workflow.processor import EventProcessor
from orchestrator.workflow.service import Workflow


@dataclass
class Services:
    settings: Settings
    instance_id: str
    redact: Redactor
    db: Database
    agent_store: AgentStore
    log_store: LogStore
    bus: LogBus
    writer: LogWriter
    runtime: Runtime
    isolation: Isolation
    agents: AgentManager
    task_store: TaskStore
    queue_store: QueueStore
    queue: QueueProcessor
    runner: TaskRunner
    event_store: EventStore
    events: EventProcessor
    workflow: Workflow
    inbox: Inbox
    github: GitHubClient
    publisher: Publisher
    webhook_store: WebhookStore
    deliverer: Deliverer
    spawn_rate: SpawnRate
    pr_watch: PRWatcher
    intake_store: IntakeStore
    intake: IssueIntake
    pull_news: PullNews
    profile_store: ProfileStore


_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")


def secrets_of(settings: Settings) -> list[str | None]:
    named = {"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"}
    named |= {n for n in settings.agent_env_passthrough if any(w in n.upper() for w in _SECRET_WORDS)}
    named |= set(settings.mcp_env_allowlist)  # what MCP servers are given: redacted whatever its name
    env_secrets = [v for k, v in os.environ.items() if k in named]
    db_password = urlsplit(settings.database_url).password if settings.database_url else None
    return [
        settings.github_token,
        settings.api_token,
        db_password,
        settings.github_webhook_secret,
        *env_secrets,
    ]


def build(settings: Settings) -> Services:
    instance_id = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    redact = Redactor(secrets_of(settings))
    db = Database(settings.resolved_database_url)
    agent_store = AgentStore(db)
    log_store = LogStore(db)
    bus = LogBus()
    writer = LogWriter(
        log_store,
        bus,
        flush_interval=settings.log_flush_interval_seconds,
        max_lines=settings.log_batch_max_lines,
        owner=instance_id,
    )
    runtime = make_runtime(settings, instance_id)
    agents = AgentManager(settings, agent_store, runtime, writer, bus, redact, instance_id)
    writer.on_lost = agents.release
    task_store = TaskStore(db)
    queue_store = QueueStore(db)
    event_store = EventStore(db)
    events = EventProcessor(event_store, instance_id, RetryPolicy(max_attempts=settings.event_max_attempts))
    github = GitHubClient(settings.github_api_url, settings.github_token, settings.github_owner)
    publisher = Publisher(
        Mirrors(settings.mirrors_dir), settings.github_git_url, settings.github_owner, settings.github_token
    )
    runner: TaskRunner = (
        WorkflowRunner(queue_store, task_store, event_store, events, agents)
        if settings.use_multi_agent_events
        else DirectRunner(
            queue_store,
            task_store,
            agent_store,
            agents,
            rate_limit_backoff_seconds=settings.rate_limit_backoff_seconds,
            rate_limit_max_per_task=settings.rate_limit_max_per_task,
        )
    )
    processor = QueueProcessor(queue_store, runner, instance_id, enabled=settings.enable_queue_processor)
    profile_store = ProfileStore(db)
    workflow = Workflow(
        settings,
        task_store,
        event_store,
        agent_store,
        agents,
        github,
        publisher,
        runner,
        events.wake,
        profiles=profile_store,
    )
    events.workflow = workflow
    pr_watch = PRWatcher(settings, task_store, event_store, github, events.wake, pushed=publisher.pushed)
    workflow.on_wait = lambda: pr_watch.poke("", None, None)
    webhook_store = WebhookStore(db)
    inbox = Inbox(settings.resolved_event_dir, event_store, events.wake, settings.event_inbox_poll_seconds)
    intake_store = IntakeStore(db)
    intake = IssueIntake(
        label=settings.github_intake_label,
        repos=[github.ref(r).full_name for r in settings.github_intake_repos],
        poll_seconds=settings.github_poll_seconds,
        store=intake_store,
        tasks=task_store,
        queue=QueueControl(queue_store, processor.wake),
        issues=Issues(github),
        redact=redact,
    )
    return Services(
        settings=settings,
        instance_id=instance_id,
        redact=redact,
        db=db,
        agent_store=agent_store,
        log_store=log_store,
        bus=bus,
        writer=writer,
        runtime=runtime,
        isolation=isolation(runtime),
        agents=agents,
        task_store=task_store,
        queue_store=queue_store,
        queue=processor,
        runner=runner,
        event_store=event_store,
        events=events,
        workflow=workflow,
        inbox=inbox,
        github=github,
        publisher=publisher,
        webhook_store=webhook_store,
        deliverer=Deliverer(
            webhook_store,
            settings.webhook_policy,
            instance_id,
            lapse_seconds=settings.instance_lapse_seconds,
            change_counter=db.change_counter,
        ),
        spawn_rate=SpawnRate(settings.spawn_rate_per_minute),
        pr_watch=pr_watch,
        intake_store=intake_store,
        intake=intake,
        pull_news=pr_watch,
        profile_store=profile_store,
    )
