"""The HTTP the egress proxy reads from an agent: proxy request heads and request body framing.

Only the agent-to-upstream direction is parsed (to find where each request starts, so every one is
checked and rewritten); answers are passed back as they come."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

from orchestrator.domain.egress import split_host_port

HEAD_LIMIT = 16 * 1024
HEAD_TIMEOUT_SECONDS = 30.0
_CHUNK = 64 * 1024
_HOP_HEADERS = ("proxy-authorization:", "proxy-connection:")

Framing = int | None  # a Content-Length, or None for a chunked body


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def answer(status: int, reason: str) -> bytes:
    phrase = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway", 503: "Service Unavailable"}
    body = f"orchestrator egress: {reason}\n".encode()
    return (
        f"HTTP/1.1 {status} {phrase.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


@dataclass(frozen=True)
class Request:
    method: str
    host: str
    port: int
    head: bytes | None  # the head to send upstream in origin form; None for CONNECT
    framing: Framing = 0


def parse_head(head: bytes) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise Refused(400, "not an HTTP proxy request")
    method, target, version = parts
    if method.upper() == "CONNECT":
        try:
            host, port = split_host_port(target, None)
        except ValueError as exc:
            raise Refused(400, f"bad CONNECT target {target[:200]!r}") from exc
        if port is None:
            raise Refused(400, f"CONNECT needs host:port, got {target[:200]!r}")
        return Request("CONNECT", host, port, None)
    url = urlsplit(target)
    if url.scheme.lower() != "http" or not url.hostname:
        raise Refused(400, "only CONNECT and absolute http:// requests go through this proxy")
    try:
        port = url.port or 80
    except ValueError as exc:
        raise Refused(400, f"bad port in {target[:200]!r}") from exc
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    headers = [ln for ln in lines[1:] if ln and not ln.lower().startswith(_HOP_HEADERS)]
    rewritten = "\r\n".join([f"{method} {path} {version}", *headers]) + "\r\n\r\n"
    return Request(method, url.hostname, port, rewritten.encode("latin-1"), _framing(headers))


def _framing(headers: list[str]) -> Framing:
    length: Framing = 0
    for line in headers:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "transfer-encoding" and value.endswith("chunked"):
            return None
        if name == "content-length":
            if not value.isdigit():
                raise Refused(400, "bad Content-Length")
            length = int(value)
    return length


async def read_request(reader: asyncio.StreamReader, wait: float = HEAD_TIMEOUT_SECONDS) -> Request | None:
    """The next request on the connection; None when the agent closed it between requests."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise Refused(400, "incomplete request head") from exc
        return None
    except (asyncio.LimitOverrunError, ValueError) as exc:
        raise Refused(400, f"request head over {HEAD_LIMIT} bytes") from exc
    return parse_head(head)


async def copy_body(src: asyncio.StreamReader, dst: asyncio.StreamWriter, framing: Framing) -> None:
    if framing is not None:
        await _copy_exact(src, dst, framing)
        return
    while True:
        line = await src.readuntil(b"\r\n")
        dst.write(line)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise Refused(400, "bad chunk size") from exc
        if size == 0:
            while (trailer := await src.readuntil(b"\r\n")) != b"\r\n":
                dst.write(trailer)
            dst.write(b"\r\n")
            await dst.drain()
            return
        await _copy_exact(src, dst, size + 2)


async def _copy_exact(src: asyncio.StreamReader, dst: asyncio.StreamWriter, size: int) -> None:
    while size > 0:
        data = await src.read(min(size, _CHUNK))
        if not data:
            raise asyncio.IncompleteReadError(b"", size)
        dst.write(data)
        await dst.drain()
        size -= len(data)
