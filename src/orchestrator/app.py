"""The composition root: builds the services, starts the background loops, serves the API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from orchestrator import __version__, api_token, data_dir, service_log
from orchestrator.api import agents as agents_api
from orchestrator.api import changes as changes_api
from orchestrator.api import dashboard as dashboard_api
from orchestrator.api import errors, health
from orchestrator.api import events as events_api
from orchestrator.api import github as github_api
from orchestrator.api import github_webhook as github_webhook_api
from orchestrator.api import metrics as metrics_api
from orchestrator.api import profiles as profiles_api
from orchestrator.api import queue as queue_api
from orchestrator.api import stats as stats_api
from orchestrator.api import tasks as tasks_api
from orchestrator.api import webhooks as webhooks_api
from orchestrator.api.deps import Authorized
from orchestrator.api.guard import Guard, HostPolicy
from orchestrator.api.warmup import warm_up
from orchestrator.dumpable import make_undumpable
from orchestrator.live.changes import ChangeFeed
from orchestrator.recovery import Recovery
from orchestrator.runtimes.factory import egress_state
from orchestrator.services import Services, build
from orchestrator.settings import Settings
from orchestrator.store.changes import ChangeStore
from orchestrator.store.service_log import ServiceLogStore

log = logging.getLogger(__name__)


class Background:
    """Named, supervised background loops: one that dies is logged and started again after a pause;
    all are cancelled and awaited on shutdown."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._tasks.append(asyncio.create_task(self._keep(name, loop), name=name))

    @staticmethod
    async def _keep(name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        pause = 0.5
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s died; starting it again in %.1f s", name, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def with_api_token(settings: Settings) -> tuple[Settings, bool]:
    """The settings with the API token the service runs with, and whether it generated that token
    (none was set: it lives in `<data>/api-token`, made at first start)."""
    if settings.api_token:
        api_token.remove_stale(settings.data_dir)
        return settings, False
    token = api_token.load_or_create(settings.data_dir)
    return settings.model_copy(update={"api_token": token}), True


def create_app(settings: Settings, *, kill_agents_on_shutdown: bool = False) -> FastAPI:
    data_dir.prepare(settings)
    settings, token_generated = with_api_token(settings)
    services = build(settings)
    feed = ChangeFeed(
        ChangeStore(services.db),
        interval=settings.changes_poll_seconds,
        max_readers=settings.changes_max_clients,
        change_counter=services.db.change_counter,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db_log = service_log.configure(settings.log_level, services.redact)
        log_lines = ServiceLogStore(services.db)
        make_undumpable()
        await asyncio.to_thread(services.db.migrate)
        background = Background()
        background.start("log-writer", services.writer.run)
        background.start("service-log", lambda: service_log.pump_to_database(db_log, log_lines))
        recovery = Recovery(services)
        recovery.register()
        recovered = await recovery.sweep()
        services.agents.make_blanks()  # the first agents find theirs ready, made while the service idles
        background.start("queue-processor", services.queue.run)
        for name, loop in services.runner.loops():
            background.start(name, loop)
        background.start("instance-heartbeat", recovery.run)
        if not services.db.is_sqlite:  # one service per SQLite file: every agent it runs is its own
            background.start("kill-requests", services.agents.follow_kill_requests)
        background.start("event-inbox", services.inbox.run)
        background.start("webhooks", services.deliverer.run)
        background.start("pr-watch", services.pr_watch.run)  # finds work only in the workflow mode
        background.start("issue-intake", services.intake.run)
        background.start("change-feed", feed.run)  # looks at the store only while it has readers
        log.info(
            "orchestrator %s up as %s on %s:%s (runtime %s; recovered %s)",
            __version__,
            services.instance_id,
            settings.host,
            settings.port,
            services.runtime.name,
            recovered,
        )
        if services.isolation.warning:
            log.warning("UNSANDBOXED AGENTS: %s", services.isolation.warning)
        egress = egress_state(services.runtime, settings)
        if not egress.startswith("restricted"):
            log.warning("agent network egress: %s", egress)
        if token_generated:
            log.info("API token: generated, in %s", api_token.token_path(settings.data_dir))
        await warm_up(app.router)
        try:
            yield
        finally:
            await services.agents.shutdown(kill_agents=kill_agents_on_shutdown)
            if kill_agents_on_shutdown:
                recovery.stop()
            await services.writer.drain()
            await background.stop()
            db_log.flush_to(log_lines)
            services.github.close()
            services.db.dispose()

    app = FastAPI(
        title="orchestrator",
        version=__version__,
        description="Runs fleets of Claude Code agents.",
        lifespan=lifespan,
    )
    app.add_middleware(health.AnonymousHealth)  # added first: inside the guard
    app.add_middleware(Guard, settings=settings, token=settings.api_token or "")
    app.state.services = services
    app.state.host_policy = HostPolicy.from_settings(settings)
    app.state.token_generated = token_generated
    app.state.changes = feed
    errors.install(app)
    app.include_router(health.router)
    app.include_router(agents_api.router, dependencies=[Authorized])
    app.include_router(tasks_api.router, dependencies=[Authorized])
    app.include_router(queue_api.router, dependencies=[Authorized])
    app.include_router(events_api.router, dependencies=[Authorized])
    app.include_router(webhooks_api.router, dependencies=[Authorized])
    app.include_router(profiles_api.router, dependencies=[Authorized])
    app.include_router(github_webhook_api.router)  # signed with GITHUB_WEBHOOK_SECRET, not the API token
    app.include_router(github_api.router, dependencies=[Authorized])
    app.include_router(metrics_api.router, dependencies=[Authorized])
    app.include_router(changes_api.router, dependencies=[Authorized])
    app.include_router(stats_api.router, dependencies=[Authorized])
    app.include_router(dashboard_api.router)
    app.state.github = services.github
    return app


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services
