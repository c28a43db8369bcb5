"""The gate in front of every route, ahead of routing and of any body parsing.

In this order: the Host header must be one this service answers to (DNS rebinding); a state-changing
request must not come from another site's page (`Origin`, `Sec-Fetch-Site`); the API token is checked
before a byte of the body is read; the body is cut at `API_MAX_BODY_BYTES`, whether its length is
announced or it is streamed in chunks."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.api.errors import send_refusal
from orchestrator.domain.hosts import is_loopback_host
from orchestrator.errors import BadRequest, Forbidden, Misdirected, TooLarge, Unauthorized
from orchestrator.settings import Settings

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_BINDS = ("0.0.0.0", "::", "[::]", "")  # noqa: S104 (names, not a bind)
DASHBOARD_TOKEN_PATH = "/api/dashboard/token"  # noqa: S105 (a path)
# Open without the token: the dashboard's page and assets (no data) and the minimal health check.
OPEN_PATHS = frozenset({"/", "/api/health", DASHBOARD_TOKEN_PATH})
OPEN_PREFIXES = ("/static/",)
# Open without the API token because GitHub cannot send it: the route checks the HMAC signature instead.
GITHUB_WEBHOOK_PATH = "/api/github/webhook"
WRONG_TOKEN = "missing or wrong API token: send Authorization: Bearer <token>"  # noqa: S105 (a message)


def split_host(value: str) -> tuple[str, int | None] | None:
    """`Name:port` of a Host header, lower-cased; None when it is not a host."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value.partition("]")
        if not bracket:
            return None
        name += "]"
        port_text = rest.removeprefix(":") if rest else None
        if rest and not rest.startswith(":"):
            return None
    else:
        name, colon, port_text = value.partition(":")
        port_text = port_text if colon else None
    if not name or any(c in name for c in "/@\\ \t,"):
        return None
    if port_text is None:
        return name, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return name, int(port_text)


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _bound_name(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host.lower()


@dataclass(frozen=True)
class HostPolicy:
    """Which Host headers the API answers. A rebinding page can only send its own DNS name, so the
    loopback names, the bound host, IP literals (when bound to every address) and the operator's names
    are safe; any other name is refused."""

    port: int
    names: frozenset[str]
    extra: frozenset[str]
    any_ip: bool
    any_host: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> HostPolicy:
        bound = _bound_name(settings.host)
        wildcard = settings.host in WILDCARD_BINDS
        names = set(LOOPBACK_NAMES) | (set() if wildcard else {bound})
        return cls(
            port=settings.port,
            names=frozenset(names),
            extra=frozenset(h for h in settings.allowed_hosts if h != "*"),
            any_ip=wildcard,
            any_host="*" in settings.allowed_hosts,
        )

    def allows(self, host: str | None) -> bool:
        parsed = split_host(host or "")
        if parsed is None:
            return False
        name, port = parsed
        if self.any_host or (self.any_ip and _is_ip_literal(name)):
            return True
        if name in self.names and port in (None, self.port):
            return True
        return name in self.extra or (port is not None and f"{name}:{port}" in self.extra)

    def is_loopback(self, host: str | None) -> bool:
        """The service's own loopback origin: a loopback name with the bound port."""
        parsed = split_host(host or "")
        return parsed is not None and parsed[0] in LOOPBACK_NAMES and parsed[1] == self.port


def cross_site_refusal(method: str, host: str, origin: str | None, fetch_site: str | None) -> str | None:
    """Why a state-changing request looks sent by another site's page; None when it does not."""
    if method.upper() not in STATE_CHANGING:
        return None
    if fetch_site in ("cross-site", "same-site"):
        return (
            f"refused: a {method} sent by another site's page (Sec-Fetch-Site: {fetch_site}); "
            "the API takes changes only from its own dashboard or from clients outside a browser"
        )
    if origin is not None:
        parsed = urlsplit(origin)
        if parsed.scheme not in ("http", "https") or parsed.netloc.lower() != host.strip().lower():
            return (
                f"refused: a {method} from the page of origin {origin[:200]!r}, not this service's own; "
                "the API takes changes only from its own dashboard or from clients outside a browser"
            )
    return None


def dashboard_token_refusal(
    policy: HostPolicy, host: str | None, fetch_site: str | None, forwarded: bool, peer: str | None
) -> str | None:
    """Why the generated token must not be handed to this caller; None for the dashboard's own page."""
    if not policy.is_loopback(host):
        return "the token is given only on the service's loopback address (127.0.0.1, localhost, [::1])"
    if forwarded or peer is None or peer == "localhost" or not is_loopback_host(peer):
        return "the token is given only to a browser on this machine, not through a proxy"
    if fetch_site != "same-origin":
        return "the token is given only to the dashboard's own page (Sec-Fetch-Site: same-origin)"
    return None


def bearer_matches(header: str | None, token: str | None) -> bool:
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), token.encode())


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or path == GITHUB_WEBHOOK_PATH


class BodyTooLarge(Exception):
    pass


class Guard:
    """Pure ASGI middleware: refusals are answered here, before the app reads or parses anything."""

    def __init__(self, app: ASGIApp, *, settings: Settings, token: str) -> None:
        if not token:
            raise ValueError("the API guard needs a token")
        self.app = app
        self.hosts = HostPolicy.from_settings(settings)
        self.token = token
        self.max_body = settings.api_max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # the API has none
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not self.hosts.allows(host):
            shown = (host or "")[:200]
            await send_refusal(
                send,
                Misdirected(
                    f"this service does not answer to Host {shown!r}; "
                    "add the name to ALLOWED_HOSTS if it is really this service's"
                ),
            )
            return
        method = scope["method"]
        refusal = cross_site_refusal(method, host or "", headers.get("origin"), headers.get("sec-fetch-site"))
        if refusal:
            await send_refusal(send, Forbidden(refusal))
            return
        if not is_open(scope["path"]) and not bearer_matches(headers.get("authorization"), self.token):
            await send_refusal(send, Unauthorized(WRONG_TOKEN, challenge="Bearer"))
            return
        if "content-length" in headers or "transfer-encoding" in headers:
            try:
                receive = await self._bounded(headers, receive)
            except BodyTooLarge:
                # the connection stays open: the server drops the rest unread, the client gets the answer
                await send_refusal(
                    send,
                    TooLarge(f"request body over the limit of {self.max_body} bytes (API_MAX_BODY_BYTES)"),
                )
                return
            except ValueError:
                await send_refusal(send, BadRequest("Content-Length: not a byte count"))
                return
        await self.app(scope, receive, send)

    async def _bounded(self, headers: Headers, receive: Receive) -> Receive:
        """The whole body read here, at most `max_body` bytes, then handed on as one message."""
        announced = headers.get("content-length")
        if announced is not None and int(announced) > self.max_body:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([message], receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
