"""A kept-alive connection outlives a client's own idle expiry (httpx: 5 s), so that a client never sends
on a connection the service is closing at the same moment."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from tests.support.server import Server


def _get(sock: socket.socket, host: str) -> bytes:
    """One whole answer to GET /api/health on `sock` (empty if the service closed the connection)."""
    sock.sendall(f"GET /api/health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    sock.settimeout(10)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_connection_idle_past_a_clients_expiry_still_answers(server: Server) -> None:
    url = urlsplit(server.url)
    host = f"{url.hostname}:{url.port}"
    with socket.create_connection((url.hostname, url.port)) as sock:
        assert _get(sock, host).startswith(b"HTTP/1.1 200")
        time.sleep(6.5)  # past httpx's 5 s and uvicorn's default keep-alive of 5 s
        assert _get(sock, host).startswith(b"HTTP/1.1 200"), "the service closed the idle connection"
