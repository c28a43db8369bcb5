"""The dashboard: one static page and its assets, served without the token (they hold no data).

The page asks for the API token itself and sends it on every API call."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

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
        raise HTTPException(404, "the dashboard is not installed")
    return FileResponse(index, media_type=_TYPES[".html"], headers=_PAGE_HEADERS)


@router.get("/static/{name}")
def asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise HTTPException(404, f"no such file: {name}")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)
