"""GET /metrics: the Prometheus exposition of the app's own registry (see orchestrator.metrics)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from orchestrator.api.errors import METRICS_RESPONSES

router = APIRouter(tags=["metrics"], responses=METRICS_RESPONSES)


def registry_of(request: Request) -> CollectorRegistry:
    registry: CollectorRegistry = request.app.state.metrics
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
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(registry_of(request)), media_type=content_type)
