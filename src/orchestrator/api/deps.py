"""Dependencies of the routers: the services built by the app, and the API token check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from orchestrator.api.guard import bearer_matches
from orchestrator.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def is_authorized(request: Request) -> bool:
    return bearer_matches(request.headers.get("authorization"), get_services(request).settings.api_token)


def require_token(request: Request) -> None:
    """The routers' own check, behind the one the guard middleware makes before the body is read."""
    if not is_authorized(request):
        raise HTTPException(
            401,
            "missing or wrong API token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authorized = Depends(require_token)
