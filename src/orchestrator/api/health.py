from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator import __version__
from orchestrator.api.deps import get_services, is_authorized
from orchestrator.models import Health
from orchestrator.runtimes.factory import egress_state
from orchestrator.services import Services
from orchestrator.store.db import StoreError

router = APIRouter(tags=["health"])

# Health is polled (load balancers, dashboards, the benches): its checks, a database round trip and
# PATH walks, run in a worker thread at most this often, and callers in between share the last result.
CHECKS_FRESH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _Checks:
    database: str
    runtime_problem: str | None
    claude_problem: str | None
    at: float

    @property
    def ok(self) -> bool:
        return self.database == "ok" and self.runtime_problem is None and self.claude_problem is None


def _check(services: Services, at: float) -> _Checks:
    try:
        services.db.ping()
        database = "ok"
    except StoreError as exc:
        database = f"error: {exc}"
    return _Checks(database, services.runtime.check(), services.agents.claude_problem(), at)


class HealthChecks:
    """The last checks of one service, refreshed in one worker thread when older than a second."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._last: _Checks | None = None
        self._running: asyncio.Future[_Checks] | None = None

    def fresh(self) -> _Checks | None:
        """The last checks while they are fresh; None when the next caller must refresh them."""
        last = self._last
        if last is not None and asyncio.get_running_loop().time() - last.at < CHECKS_FRESH_SECONDS:
            return last
        return None

    async def current(self) -> _Checks:
        if (last := self.fresh()) is not None:
            return last
        if self._running is None:
            self._running = asyncio.ensure_future(self._refresh(asyncio.get_running_loop().time()))
        return await asyncio.shield(self._running)

    async def _refresh(self, now: float) -> _Checks:
        try:
            self._last = await asyncio.to_thread(_check, self._services, now)
            return self._last
        finally:
            self._running = None


def _checks_of(request: Request, services: Services) -> HealthChecks:
    checks: HealthChecks | None = getattr(request.app.state, "health_checks", None)
    if checks is None:
        checks = request.app.state.health_checks = HealthChecks(services)
    return checks


# What an anonymous caller is told, encoded once.
_ANONYMOUS = {
    status: Health(status=status).model_dump_json(exclude_none=True).encode() for status in ("ok", "degraded")
}


@router.get("/api/health", response_model=Health, response_model_exclude_none=True)
async def health(request: Request) -> Health | Response:
    services = get_services(request)
    checks = await _checks_of(request, services).current()
    status = "ok" if checks.ok else "degraded"
    if not is_authorized(request):
        return Response(_ANONYMOUS[status], media_type="application/json")
    return Health(
        status=status,
        version=__version__,
        instance_id=services.instance_id,
        database=checks.database,
        runtime=f"{services.runtime.name}: {checks.runtime_problem or 'ok'}",
        sandbox=services.isolation.sandbox,
        claude=checks.claude_problem or f"ok: {services.settings.claude_bin}",
        running_agents=services.agents.running_count,
        agent_egress=egress_state(services.runtime, services.settings),
        warnings=[services.isolation.warning] if services.isolation.warning else [],
    )


_HEALTH_PATH = "/api/health"


class AnonymousHealth:
    """Pure ASGI middleware, inside the guard: an anonymous GET /api/health is answered from the fresh
    checks before routing, so the path load balancers poll costs little more than a bare ASGI app. A
    caller with a token, or stale checks, go on to the route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == _HEALTH_PATH and scope["method"] == "GET":
            checks: HealthChecks | None = getattr(scope["app"].state, "health_checks", None)
            last = checks.fresh() if checks is not None else None
            if last is not None and not any(name == b"authorization" for name, _ in scope["headers"]):
                body = _ANONYMOUS["ok" if last.ok else "degraded"]
                headers = [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                ]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
