from __future__ import annotations

from fastapi import APIRouter

from orchestrator import __version__
from orchestrator.api.deps import ServicesDep
from orchestrator.models import Health
from orchestrator.store.db import StoreError

router = APIRouter(tags=["health"])


@router.get("/api/health", response_model=Health)
def health(services: ServicesDep) -> Health:
    try:
        services.db.ping()
        database = "ok"
    except StoreError as exc:
        database = f"error: {exc}"
    runtime_problem = services.runtime.check()
    claude_problem = services.agents.claude_problem()
    ok = database == "ok" and runtime_problem is None and claude_problem is None
    return Health(
        status="ok" if ok else "degraded",
        version=__version__,
        instance_id=services.instance_id,
        database=database,
        runtime=f"{services.runtime.name}: {runtime_problem or 'ok'}",
        sandbox=services.isolation.sandbox,
        claude=claude_problem or f"ok: {services.settings.claude_bin}",
        running_agents=services.agents.running_count,
        warnings=[services.isolation.warning] if services.isolation.warning else [],
    )
