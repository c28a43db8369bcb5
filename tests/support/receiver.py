"""A local webhook receiver: records what arrives, checks each signature as README.md tells receivers
to; can answer 500, hang for the first requests, take its time with every one, or redirect."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLAY_WINDOW = 300


def verify(secret: str, body: bytes, header: str, now: float) -> bool:
    """The receiver's check, written from README.md: `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
    refused when the timestamp is more than five minutes away from now."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp = fields.get("t", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > REPLAY_WINDOW:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # many deliveries connect at once; the default backlog of 5 drops some


class Receiver:
    def __init__(
        self,
        *,
        fail_first: int = 0,
        hang_first: int = 0,
        hang_seconds: float = 30,
        secret: str | None = None,
        delay: float = 0,
        redirect_to: str | None = None,
    ) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.hang_first = hang_first
        self.hang_seconds = hang_seconds
        self.secret = secret
        self.delay = delay
        self.redirect_to = redirect_to
        self._lock = threading.Lock()
        self._seen = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver._seen += 1
                    n = receiver._seen
                if n <= receiver.hang_first:
                    time.sleep(receiver.hang_seconds)
                    return
                if n <= receiver.hang_first + receiver.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                if receiver.redirect_to is not None:
                    self.send_response(307)
                    self.send_header("Location", receiver.redirect_to)
                    self.end_headers()
                    return
                time.sleep(receiver.delay)
                signature = self.headers.get("X-Orchestrator-Signature", "")
                verified = receiver.secret is not None and verify(
                    receiver.secret, body, signature, time.time()
                )
                with receiver._lock:
                    receiver.received.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                            "json": json.loads(body),
                            "verified": verified,
                        }
                    )
                self.send_response(204)
                self.end_headers()

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.received if r["json"]["type"] == event_type]
