"""Dependencies of the routers: the services built by the app, and the API token check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from orchestrator.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def require_token(request: Request) -> None:
    services = get_services(request)
    expected = services.settings.api_token
    if not expected:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), expected.encode()):
        raise HTTPException(
            401,
            "missing or wrong API token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authorized = Depends(require_token)
