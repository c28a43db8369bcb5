"""The agents' egress proxy on its real Unix sockets (runtimes/egress.py, egress_proxy.py).

Every refusal is checked to be made BEFORE any connection: the proxy is given an opener that records
each address it is asked to connect to (and connects only on loopback). Names that must not resolve to
an inside address are answered by a resolver handed in, so no packet leaves loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from orchestrator.domain.egress import EgressPolicy, IPAddress
from orchestrator.runtimes.egress import MODEL_SOCKET, PROXY_SOCKET, Egress
from orchestrator.runtimes.egress_proxy import Streams, open_tcp, resolve
from tests.support.decoy import Decoy
from tests.support.runtimes import require_bwrap

AGENT = "coding-egress01"


class Recorder:
    def __init__(self) -> None:
        self.dialled: list[tuple[str, int]] = []

    async def open(self, address: str, port: int) -> Streams:
        self.dialled.append((address, port))
        assert ipaddress.ip_address(address).is_loopback, f"the test would leave loopback: {address}"
        return await open_tcp(address, port)


async def fake_dns(host: str, port: int) -> list[IPAddress]:
    answers = {
        "metadata.example.com": ["169.254.169.254"],
        "intranet.example.com": ["10.0.0.7", "192.168.0.3"],
    }
    if host in answers:
        return [ipaddress.ip_address(a) for a in answers[host]]
    return await resolve(host, port)


async def _ask(sock: Path, request: bytes, then: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(request)
    if then:
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(then)
        writer.write_eof()
        rest = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return head + rest
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def _run(
    tmp_path: Path, allow: str, body: Callable[[Path, Recorder], Awaitable[None]], model_port: int
) -> None:
    async def main() -> None:
        recorder = Recorder()
        egress = Egress(
            EgressPolicy.from_settings(f"http://127.0.0.1:{model_port}", allow),
            tmp_path / "egress",
            opener=recorder.open,
            resolver=fake_dns,
        )
        relay = await egress.open(AGENT)
        try:
            await body(relay.net_dir, recorder)
        finally:
            egress.close(AGENT)

    asyncio.run(main())


def test_refused_targets_are_refused_before_any_connection(tmp_path: Path) -> None:
    with Decoy("model") as model, Decoy("other") as other:

        async def body(net: Path, recorder: Recorder) -> None:
            for target in [
                "169.254.169.254:80",
                "10.0.0.1:443",
                f"127.0.0.1:{other.port}",
                f"localhost:{other.port}",
                f"[::ffff:127.0.0.1]:{other.port}",
                "2130706433:443",
                "metadata.example.com:443",
                "intranet.example.com:443",
            ]:
                answer = await _ask(
                    net / PROXY_SOCKET, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()
                )
                assert answer.startswith(b"HTTP/1.1 403"), (target, answer)
                assert b"refused" in answer
            answer = await _ask(
                net / PROXY_SOCKET, f"GET http://127.0.0.1:{other.port}/x HTTP/1.1\r\n\r\n".encode()
            )
            assert answer.startswith(b"HTTP/1.1 403"), answer
            assert recorder.dialled == [], "a refused target was connected to"

        _run(tmp_path, "metadata.example.com,intranet.example.com", body, model.port)
        assert other.connections == [] and model.connections == []


def test_allowed_targets_are_reached_through_the_proxy(tmp_path: Path) -> None:
    with Decoy("model") as model, Decoy("allowed") as allowed:

        async def body(net: Path, recorder: Recorder) -> None:
            plain = await _ask(
                net / PROXY_SOCKET,
                f"GET http://127.0.0.1:{allowed.port}/path?q=1 HTTP/1.1\r\nHost: x\r\n"
                "Proxy-Authorization: Basic c2VjcmV0\r\n\r\n".encode(),
            )
            assert plain.startswith(b"HTTP/1.1 200") and plain.endswith(b"decoy allowed\n"), plain
            tunnel = await _ask(
                net / PROXY_SOCKET,
                f"CONNECT 127.0.0.1:{allowed.port} HTTP/1.1\r\n\r\n".encode(),
                then=b"GET /tunnelled HTTP/1.1\r\n\r\n",
            )
            assert tunnel.startswith(b"HTTP/1.1 200 Connection Established"), tunnel
            assert tunnel.endswith(b"decoy allowed\n")
            direct = await _ask(net / MODEL_SOCKET, b"POST /v1/messages HTTP/1.1\r\n\r\n")
            assert direct.endswith(b"decoy model\n"), direct
            assert recorder.dialled == [("127.0.0.1", allowed.port)] * 2 + [("127.0.0.1", model.port)]

        _run(tmp_path, f"127.0.0.1:{allowed.port}", body, model.port)
        first, second = allowed.connections
        assert first.startswith(b"GET /path?q=1 HTTP/1.1\r\n"), first
        assert b"Proxy-Authorization" not in first
        assert second.startswith(b"GET /tunnelled ")
        assert model.connections[0].startswith(b"POST /v1/messages")


def test_each_request_of_a_kept_alive_connection_is_rewritten_and_checked(tmp_path: Path) -> None:
    with Decoy("model") as model, Decoy("allowed") as allowed, Decoy("other") as other:

        async def body(net: Path, recorder: Recorder) -> None:
            base = f"http://127.0.0.1:{allowed.port}"
            requests = (
                f"POST {base}/one HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                f"POST {base}/two HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                f"3\r\nabc\r\n0\r\n\r\n"
                f"GET http://127.0.0.1:{other.port}/three HTTP/1.1\r\n\r\n"
            )
            reader, writer = await asyncio.open_unix_connection(str(net / PROXY_SOCKET))
            writer.write(requests.encode())
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert recorder.dialled == [("127.0.0.1", allowed.port)]

        _run(tmp_path, f"127.0.0.1:{allowed.port}", body, model.port)
        assert other.connections == []
        assert allowed.connections == [
            b"POST /one HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /two HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        ]


def test_a_bad_request_later_on_a_kept_alive_connection_ends_it(tmp_path: Path) -> None:
    with Decoy("model") as model, Decoy("allowed") as allowed:

        async def body(net: Path, recorder: Recorder) -> None:
            first = f"POST http://127.0.0.1:{allowed.port}/one HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"
            reader, writer = await asyncio.open_unix_connection(str(net / PROXY_SOCKET))
            writer.write(first.encode() + b"not http\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 10)  # ends: no connection is left open
            writer.close()
            assert answer.endswith(b"not an HTTP proxy request\n"), answer

        _run(tmp_path, f"127.0.0.1:{allowed.port}", body, model.port)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"hello\r\n\r\n",
        b"GET /relative HTTP/1.1\r\n\r\n",
        b"CONNECT nohostport HTTP/1.1\r\n\r\n",
        b"GET https://x/ HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n",
    ],
)
def test_what_is_not_a_proxy_request_gets_a_400(tmp_path: Path, request_bytes: bytes) -> None:
    with Decoy("model") as model:

        async def body(net: Path, recorder: Recorder) -> None:
            answer = await _ask(net / PROXY_SOCKET, request_bytes)
            assert answer.startswith(b"HTTP/1.1 400"), answer
            assert recorder.dialled == []

        _run(tmp_path, "", body, model.port)


def test_a_data_directory_path_of_any_length_works(tmp_path: Path) -> None:
    """A Unix socket's path has at most 107 bytes: the service binds through a descriptor of the folder."""

    async def main() -> None:
        egress = Egress(EgressPolicy.from_settings("http://127.0.0.1:9", ""), tmp_path / ("x" * 120))
        relay = await egress.open(AGENT)
        try:
            assert len(str(relay.net_dir / "proxy.sock")) > 107
            folder = os.open(relay.net_dir, os.O_PATH | os.O_DIRECTORY)
            try:
                reader, writer = await asyncio.open_unix_connection(f"/proc/self/fd/{folder}/proxy.sock")
            finally:
                os.close(folder)
            writer.write(b"CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n")
            await writer.drain()
            assert b" 403 " in await reader.readline()
            writer.close()
        finally:
            egress.close(AGENT)

    asyncio.run(main())


def test_the_relay_check_names_what_is_missing(tmp_path: Path) -> None:
    policy = EgressPolicy.from_settings("http://127.0.0.1:9", "")
    missing = Egress(policy, tmp_path, socat=str(tmp_path / "no-socat"))
    assert "apt-get install socat" in (missing.problem() or "")
    egress = Egress(policy, tmp_path)
    assert egress.problem() is None
    assert "bwrap --unshare-net fails here" in (egress.problem("/bin/false") or "")
    assert egress.problem(require_bwrap()) is None
