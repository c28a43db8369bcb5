"""The filtering forward proxy an agent's traffic leaves through (asyncio, in the service).

One `AgentProxy` per agent serves two Unix sockets in the agent's run directory, which a relay inside the
agent's network namespace connects to (`egress.py`):
- `proxy.sock` speaks HTTP proxy: `CONNECT host:port` (HTTPS and any other TCP) and plain `http://`
  requests in absolute form. The target is decided by the policy by name, resolved once, checked by
  address, and the checked address is the one connected to. A refusal is a 403 whose body says why; no
  connection is attempted for it.
- `model.sock` (only when the model API is on loopback) is a fixed tunnel to the model API, so the CLI's
  loopback ANTHROPIC_BASE_URL works unchanged inside the namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable

from orchestrator.domain.egress import Decision, EgressPolicy, IPAddress
from orchestrator.runtimes.egress_http import Refused, Request, answer, copy_body, read_request

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 256
IDLE_SECONDS = 600.0  # a kept-alive connection between requests; its upstream may close it sooner
_LOGGED_REFUSALS = 20
_CHUNK = 64 * 1024

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Opener = Callable[[str, int], Awaitable[Streams]]
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def open_tcp(address: str, port: int) -> Streams:
    return await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT_SECONDS)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of `host`, in the resolver's order (an address literal is its own answer)."""
    with contextlib.suppress(ValueError):  # the model API on loopback, say: no trip to the resolver thread
        return [ipaddress.ip_address(host)]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if address not in found:
            found.append(address)
    return found


class AgentProxy:
    """The proxy of one agent. `opener` and `resolver` are the network: tests hand in their own."""

    def __init__(
        self,
        agent_id: str,
        policy: EgressPolicy,
        *,
        opener: Opener = open_tcp,
        resolver: Resolver = resolve,
    ) -> None:
        self.agent_id = agent_id
        self.policy = policy
        self._open = opener
        self._resolve = resolver
        self._writers: set[asyncio.StreamWriter] = set()  # both ends of every connection
        self._clients = 0
        self.refusals = 0

    async def serve_proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._serve(reader, writer, self._proxy)

    async def serve_model(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._serve(reader, writer, self._model)

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> None:
        if self._clients >= MAX_CONNECTIONS:
            writer.write(answer(503, f"more than {MAX_CONNECTIONS} connections at once"))
            await _close(writer)
            return
        self._clients += 1
        self._writers.add(writer)
        try:
            await handle(reader, writer)
        except Refused as exc:
            self._refused(exc.reason)
            with contextlib.suppress(OSError):
                writer.write(answer(exc.status, exc.reason))
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            self._clients -= 1
            self._writers.discard(writer)
            await _close(writer)

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if request is None:
            return
        what = f"{request.method} {request.host}:{request.port}"
        decision = self.policy.decide(request.host, request.port)
        if not decision.allowed:
            raise Refused(403, f"{what} refused: {decision.reason}")
        up_reader, up_writer = await self._connect(what, request.host, request.port, decision)
        if request.head is None:
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await self._splice(reader, writer, up_reader, up_writer)
        else:
            await self._splice(reader, writer, up_reader, up_writer, first=request)

    async def _requests(self, first: Request, reader: asyncio.StreamReader, up: asyncio.StreamWriter) -> None:
        """Plain HTTP, request by request (a kept-alive connection carries several): each head rewritten
        to origin form, each body passed on as framed; another target on the same connection ends it."""
        request: Request | None = first
        while request is not None:
            if (request.host, request.port) != (first.host, first.port) or request.head is None:
                self._refused(
                    f"{request.method} {request.host}:{request.port} refused: not on this connection"
                )
                break
            up.write(request.head)
            await copy_body(reader, up, request.framing)
            request = await read_request(reader, IDLE_SECONDS)
        if up.can_write_eof():
            up.write_eof()

    async def _model(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        model = self.policy.model
        decision = self.policy.decide(model.host, model.port)
        up_reader, up_writer = await self._connect(f"model API {model.url}", model.host, model.port, decision)
        await self._splice(reader, writer, up_reader, up_writer)

    async def _splice(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        first: Request | None = None,
    ) -> None:
        self._writers.add(up_writer)
        outgoing = _pipe(reader, up_writer) if first is None else self._requests(first, reader, up_writer)
        both = [asyncio.ensure_future(outgoing), asyncio.ensure_future(_pipe(up_reader, writer))]
        try:
            await asyncio.gather(*both)
        except BaseException:
            for task in both:  # one direction failed: the other must not linger on its own
                task.cancel()
            await asyncio.gather(*both, return_exceptions=True)
            raise
        finally:
            self._writers.discard(up_writer)
            await _close(up_writer)

    async def _connect(self, what: str, host: str, port: int, decision: Decision) -> Streams:
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise Refused(502, f"{what}: cannot resolve {host!r}: {exc}") from exc
        usable, why_not = self.policy.check_addresses(decision, addresses)
        if not usable:
            raise Refused(403, f"{what} refused: {why_not}")
        last: Exception | None = None
        for address in usable:
            try:
                return await self._open(str(address), port)
            except (OSError, TimeoutError) as exc:
                last = exc
        raise Refused(502, f"{what}: cannot connect: {last}")

    def _refused(self, reason: str) -> None:
        self.refusals += 1
        if self.refusals <= _LOGGED_REFUSALS:
            log.warning("egress: agent %s: %s", self.agent_id, reason)
        elif self.refusals == _LOGGED_REFUSALS + 1:
            log.warning("egress: agent %s: more refusals, no longer logged", self.agent_id)

    def close(self) -> None:
        """Ends every connection (the servers are closed by the owner)."""
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except (OSError, RuntimeError):
        dst.close()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, RuntimeError):
        await writer.wait_closed()
