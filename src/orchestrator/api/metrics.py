"""GET /metrics: the Prometheus exposition of the app's own registry (see orchestrator.metrics), built at
the first scrape: prometheus_client loads only into a service that is scraped."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response

from orchestrator.api.deps import get_services
from orchestrator.api.errors import METRICS_RESPONSES

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

router = APIRouter(tags=["metrics"], responses=METRICS_RESPONSES)
_building = threading.Lock()


def registry_of(request: Request) -> CollectorRegistry:
    state = request.app.state
    with _building:  # scrapes run in worker threads: two first scrapes build one registry
        registry: CollectorRegistry | None = getattr(state, "metrics", None)
        if registry is None:
            from orchestrator.metrics import build_registry

            registry = state.metrics = build_registry(get_services(request))
    return registry


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {}, "application/openmetrics-text": {}},
            "description": "Prometheus text format (or OpenMetrics when asked for in Accept)",
        }
    },
)
def metrics(request: Request) -> Response:
    from prometheus_client.exposition import choose_encoder

    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(registry_of(request)), media_type=content_type)
