"""A decoy TCP server on loopback that records every connection made to it (an attacker's target)."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from typing import Any


class Decoy:
    """Answers with `HTTP/1.1 200` and the body `decoy <name>` once the peer is done sending;
    `connections` lists every connection's bytes."""

    def __init__(self, name: str = "decoy") -> None:
        self.name = name
        self.connections: list[bytes] = []
        decoy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(5)
                data = b""
                with contextlib.suppress(OSError):  # all until the peer's EOF, or 0.3 s of quiet
                    while chunk := conn.recv(65536):
                        data += chunk
                        conn.settimeout(0.3)
                decoy.connections.append(data)
                body = f"decoy {decoy.name}\n".encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                with contextlib.suppress(OSError):
                    conn.sendall(head.encode() + body)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    def __enter__(self) -> Decoy:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
