from __future__ import annotations

from fastapi import APIRouter, Request

from orchestrator import __version__
from orchestrator.api.deps import ServicesDep, is_authorized
from orchestrator.models import Health
from orchestrator.runtimes.factory import egress_state
from orchestrator.store.db import StoreError

router = APIRouter(tags=["health"])


@router.get("/api/health", response_model=Health, response_model_exclude_none=True)
def health(services: ServicesDep, request: Request) -> Health:
    try:
        services.db.ping()
        database = "ok"
    except StoreError as exc:
        database = f"error: {exc}"
    runtime_problem = services.runtime.check()
    claude_problem = services.agents.claude_problem()
    ok = database == "ok" and runtime_problem is None and claude_problem is None
    if not is_authorized(request):
        return Health(status="ok" if ok else "degraded")
    return Health(
        status="ok" if ok else "degraded",
        version=__version__,
        instance_id=services.instance_id,
        database=database,
        runtime=f"{services.runtime.name}: {runtime_problem or 'ok'}",
        sandbox=services.isolation.sandbox,
        claude=claude_problem or f"ok: {services.settings.claude_bin}",
        running_agents=services.agents.running_count,
        agent_egress=egress_state(services.runtime, services.settings),
        warnings=[services.isolation.warning] if services.isolation.warning else [],
    )
