"""The one URL the service pushes a repository to: GITHUB_GIT_URL plus `/<owner>/<repo>.git`."""

from __future__ import annotations

from urllib.parse import urlsplit

from orchestrator.domain.hosts import is_loopback_host

DEFAULT_GIT_URL = "https://github.com"


def check_git_base_url(url: str) -> str:
    """https only (plain http only for a loopback host), no credentials, query or fragment; no trailing /."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if any(c.isspace() or ord(c) < 32 for c in url) or not host:
        raise ValueError("not a URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (the token is sent as a header)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(host)):
        raise ValueError("must be https (plain http only for a loopback host)")
    return url.rstrip("/")


def repo_git_url(base: str, owner: str, name: str) -> str:
    return f"{check_git_base_url(base)}/{owner}/{name}.git"
