"""A webhook POST pinned to the addresses the policy checked: it still speaks TLS to the name in the URL
(SNI, Host and the certificate check use the name, not the address; real TLS on loopback), and it moves
on to the next checked address when one refuses the connection."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.webhooks.deliverer import pinned_request, post_pinned
from orchestrator.webhooks.targets import parse_target
from tests.support.receiver import Receiver

LOOPBACK = ipaddress.ip_address("127.0.0.1")


class TLSReceiver:
    def __init__(self, cert: Path, key: Path) -> None:
        self.seen: list[dict[str, Any]] = []
        self.server_names: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.seen.append({"host": self.headers.get("Host"), "path": self.path})
                self.send_response(204)
                self.end_headers()

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

        def record_name(_sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
            receiver.server_names.append(name)

        context.sni_callback = record_name
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_receiver(certificate: tuple[Path, Path]) -> Iterator[TLSReceiver]:
    receiver = TLSReceiver(*certificate)
    yield receiver
    receiver.close()


def _post(url: str, cafile: Path) -> int:
    async def send() -> int:
        context = ssl.create_default_context(cafile=str(cafile))
        async with httpx.AsyncClient(verify=context, trust_env=False, timeout=10) as client:
            request = pinned_request(parse_target(url), LOOPBACK, b"{}", {"Content-Type": "application/json"})
            assert request.url.host == "127.0.0.1"
            response = await client.send(request)
            return response.status_code

    return asyncio.run(send())


def test_pinned_https_keeps_the_name_for_sni_host_and_certificate(
    tls_receiver: TLSReceiver, certificate: tuple[Path, Path]
) -> None:
    assert _post(f"https://localhost:{tls_receiver.port}/hook", certificate[0]) == 204
    assert tls_receiver.server_names == ["localhost"]
    assert tls_receiver.seen == [{"host": f"localhost:{tls_receiver.port}", "path": "/hook"}]


def test_pinned_https_still_checks_the_certificate_against_the_name(
    tls_receiver: TLSReceiver, certificate: tuple[Path, Path]
) -> None:
    # the address answers, but with a certificate for another name: refused, nothing delivered
    with pytest.raises(httpx.ConnectError, match=r"certificate|hostname"):
        _post(f"https://hooks.example.com:{tls_receiver.port}/hook", certificate[0])
    assert tls_receiver.seen == []


def test_the_next_checked_address_is_tried_when_one_refuses_the_connection() -> None:
    async def send(port: int, addresses: list[str]) -> int:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            target = parse_target(f"http://hooks.internal:{port}/hook")
            checked = [ipaddress.ip_address(a) for a in addresses]
            return await post_pinned(client, target, checked, b"{}", {"Content-Type": "application/json"})

    with Receiver() as receiver:  # listens on 127.0.0.1 only: 127.0.0.2 refuses the connection
        assert asyncio.run(send(receiver.port, ["127.0.0.2", "127.0.0.1"])) == 204
        assert [r["headers"]["Host"] for r in receiver.received] == [f"hooks.internal:{receiver.port}"]
        with pytest.raises(httpx.ConnectError):
            asyncio.run(send(receiver.port, ["127.0.0.2"]))
        assert len(receiver.received) == 1
