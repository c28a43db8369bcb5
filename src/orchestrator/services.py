"""Everything the service is made of, built once from Settings."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from orchestrator.agents.log_bus import LogBus
from orchestrator.agents.log_writer import LogWriter
from orchestrator.agents.manager import AgentManager
from orchestrator.domain.redact import Redactor
from orchestrator.queue.processor import QueueProcessor
from orchestrator.runtimes.base import Runtime
from orchestrator.runtimes.host import HostRuntime
from orchestrator.settings import Settings
from orchestrator.store.agents import AgentStore
from orchestrator.store.db import Database
from orchestrator.store.logs import LogStore
from orchestrator.store.queue import QueueStore
from orchestrator.store.tasks import TaskStore


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
    agents: AgentManager
    task_store: TaskStore
    queue_store: QueueStore
    queue: QueueProcessor


def secrets_of(settings: Settings) -> list[str | None]:
    env_secrets = [v for k, v in os.environ.items() if k in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")]
    return [settings.github_token, settings.api_token, *env_secrets]


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
    )
    runtime = HostRuntime()
    agents = AgentManager(settings, agent_store, runtime, writer, bus, redact, instance_id)
    task_store = TaskStore(db)
    queue_store = QueueStore(db)
    processor = QueueProcessor(
        queue_store, task_store, agent_store, agents, instance_id, enabled=settings.enable_queue_processor
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
        agents=agents,
        task_store=task_store,
        queue_store=queue_store,
        queue=processor,
    )
