"""The dashboard: one static page and its assets, served without the token (they hold no data).

The page sends the API token on every API call. When the service generated its token (none was set),
the page gets it from `DASHBOARD_TOKEN_PATH`, which hands it only to a same-origin page on the loopback
address; otherwise the page asks for it once."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from orchestrator.api.deps import get_services
from orchestrator.api.guard import DASHBOARD_TOKEN_PATH, HostPolicy, dashboard_token_refusal
from orchestrator.errors import Forbidden, NotFound
from orchestrator.runtimes.factory import agents_filtered

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_PAGE_HEADERS = {
    **_HEADERS,
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}

router = APIRouter(include_in_schema=False)


def _assets() -> dict[str, Path]:
    """The files that may be served, by name: a fixed list, so no request can walk the file system."""
    if not STATIC_DIR.is_dir():
        return {}
    return {p.name: p for p in STATIC_DIR.iterdir() if p.is_file() and p.suffix in _TYPES}


ASSETS = _assets()


@router.get("/")
def page() -> FileResponse:
    index = ASSETS.get("index.html")
    if index is None:
        raise NotFound("the dashboard is not installed")
    return FileResponse(index, media_type=_TYPES[".html"], headers=_PAGE_HEADERS)


@router.get("/static/{name}")
def asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise NotFound(f"no such file: {name}")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)


@router.get(DASHBOARD_TOKEN_PATH)
def generated_token(request: Request) -> JSONResponse:
    """The generated API token, for the dashboard's own page; refused to anything else."""
    if not request.app.state.token_generated:
        raise NotFound("this service's API token was set by its operator: type it in")
    if not agents_filtered(get_services(request).runtime):
        # an agent that shares the host's network could ask here as well as the page can
        raise Forbidden(
            "agents on this service share the host's network, so the token is not handed out here: "
            "type it in (it is in the api-token file of the service's data directory)",
        )
    policy: HostPolicy = request.app.state.host_policy
    refusal = dashboard_token_refusal(
        policy,
        request.headers.get("host"),
        request.headers.get("sec-fetch-site"),
        forwarded="forwarded" in request.headers or "x-forwarded-for" in request.headers,
        peer=request.client.host if request.client else None,
    )
    if refusal:
        raise Forbidden(refusal)
    return JSONResponse(
        {"token": get_services(request).settings.api_token},
        headers={**_HEADERS, "Cache-Control": "no-store", "Cross-Origin-Resource-Policy": "same-origin"},
    )
