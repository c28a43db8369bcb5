"""The composition root: builds the services, starts the background loops, serves the API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from orchestrator import __version__, service_log
from orchestrator.api import agents as agents_api
from orchestrator.api import errors, health
from orchestrator.api import events as events_api
from orchestrator.api import github as github_api
from orchestrator.api import queue as queue_api
from orchestrator.api import tasks as tasks_api
from orchestrator.api.deps import Authorized
from orchestrator.services import Services, build
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


class Background:
    """Named, supervised background tasks, cancelled and awaited on shutdown."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._report)
        self._tasks.append(task)

    @staticmethod
    def _report(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s died", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def create_app(settings: Settings, *, kill_agents_on_shutdown: bool = False) -> FastAPI:
    services = build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db_log = service_log.configure(settings.log_level, services.redact)
        for directory in (
            settings.data_dir,
            settings.resolved_runs_dir,
            settings.resolved_workspaces_dir,
            settings.resolved_event_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(services.db.migrate)
        background = Background()
        background.start("log-writer", services.writer.run())
        background.start("service-log", service_log.pump_to_database(db_log, services.db))
        recovered = await services.agents.recover()
        queue_recovered = services.queue.recover()
        background.start("queue-processor", services.queue.run())
        if settings.use_multi_agent_events:
            services.events.recover()
            services.workflow.unreported_agents()
            background.start("event-processor", services.events.run())
        background.start("event-inbox", services.inbox.run())
        log.info(
            "orchestrator %s up as %s on %s:%s (runtime %s; adopted %d, lost %d; queue %s)",
            __version__,
            services.instance_id,
            settings.host,
            settings.port,
            services.runtime.name,
            recovered["adopted"],
            recovered["lost"],
            queue_recovered,
        )
        try:
            yield
        finally:
            await services.agents.shutdown(kill_agents=kill_agents_on_shutdown)
            await services.writer.drain()
            await background.stop()
            db_log.flush_to(services.db)
            services.github.close()
            services.db.dispose()

    app = FastAPI(
        title="orchestrator",
        version=__version__,
        description="Runs fleets of Claude Code agents.",
        lifespan=lifespan,
    )
    app.state.services = services
    errors.install(app)
    app.include_router(health.router)
    app.include_router(agents_api.router, dependencies=[Authorized])
    app.include_router(tasks_api.router, dependencies=[Authorized])
    app.include_router(queue_api.router, dependencies=[Authorized])
    app.include_router(events_api.router, dependencies=[Authorized])
    app.include_router(github_api.router, dependencies=[Authorized])
    app.state.github = services.github
    github_api.install_error_handlers(app)
    return app


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services
