"""Sends the outbox's due deliveries: each a signed JSON POST, recorded per attempt, retried with backoff.
A slow or failing receiver costs only its own bounded attempts; nothing else waits for it.

Each delivery is leased to this instance before it is sent, so several instances on one database send it
once. The target's host is resolved once per attempt, every address checked against the policy, and the
connection made to the checked address (Host and TLS name kept), so DNS cannot swap it in between."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from orchestrator.store.db import StoreError
from orchestrator.store.webhooks import WebhookStore
from orchestrator.webhooks.resolve import vet_async
from orchestrator.webhooks.signature import SIGNATURE_HEADER, sign
from orchestrator.webhooks.targets import (
    IPAddress,
    Target,
    TargetPolicy,
    TargetRefused,
)

log = logging.getLogger(__name__)

DELIVERY_HEADER = "X-Orchestrator-Delivery"
BACKOFF_SECONDS = (1.0, 5.0, 30.0, 120.0, 600.0)
NO_ANSWER = "no answer: the connection failed or timed out"


def _forget(in_flight: dict[int, asyncio.Task[None]], delivery_id: int, _task: asyncio.Task[None]) -> None:
    in_flight.pop(delivery_id, None)


def delivery_body(delivery: dict[str, Any]) -> bytes:
    """The stored payload with the delivery id inside, so the id is covered by the signature too."""
    return json.dumps({"delivery_id": delivery["id"], **json.loads(delivery["payload"])}).encode()


def pinned_request(target: Target, address: IPAddress, body: bytes, headers: dict[str, str]) -> httpx.Request:
    """A POST to `address` that still names the target's host in Host and, for https, in SNI and the
    certificate check."""
    extensions: dict[str, Any] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    return httpx.Request(
        "POST",
        target.url.copy_with(host=str(address)),
        content=body,
        headers={**headers, "Host": target.url.netloc.decode("ascii")},
        extensions=extensions,
    )


async def post_pinned(
    client: httpx.AsyncClient,
    target: Target,
    addresses: list[IPAddress],
    body: bytes,
    headers: dict[str, str],
) -> int:
    """POSTs to the checked addresses in turn until one takes the connection; the status it answered.
    The answer's body is never read."""
    for address in addresses[:-1]:
        with contextlib.suppress(httpx.ConnectError):
            return await _post_to(client, pinned_request(target, address, body, headers))
    return await _post_to(client, pinned_request(target, addresses[-1], body, headers))


async def _post_to(client: httpx.AsyncClient, request: httpx.Request) -> int:
    response = await client.send(request, stream=True)
    await response.aclose()
    return response.status_code


class Deliverer:
    def __init__(
        self,
        store: WebhookStore,
        policy: TargetPolicy,
        owner: str,
        *,
        timeout: float = 5.0,
        attempt_seconds: float = 10.0,
        lease_seconds: float = 30.0,
        lapse_seconds: float = 10.0,
        poll_seconds: float = 0.5,
        change_counter: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._store = store
        self._policy = policy
        self._owner = owner
        self._timeout = timeout
        self._attempt_seconds = attempt_seconds
        self._lease_seconds = lease_seconds
        self._lapse_seconds = lapse_seconds
        self._poll = poll_seconds
        self._change_counter = change_counter
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        in_flight: dict[int, asyncio.Task[None]] = {}
        client: httpx.AsyncClient | None = None  # made for the first delivery: its TLS context is MBs
        quiet_at: int | None = None  # the change counter when the store last had nothing to send
        try:
            while True:
                claimed: list[dict[str, Any]] = []
                counter = self._change_counter()  # before the look: a later commit moves it
                if counter is None or counter != quiet_at:
                    claimed, quiet = await asyncio.to_thread(self._due)
                    quiet_at = counter if quiet else None
                for delivery in claimed:
                    if delivery["id"] not in in_flight:
                        if client is None:
                            # trust_env off: no proxy from the environment may stand between the check and
                            # the connection
                            client = httpx.AsyncClient(
                                timeout=self._timeout, follow_redirects=False, trust_env=False
                            )
                        task = asyncio.create_task(self._send(client, delivery))
                        in_flight[delivery["id"]] = task
                        task.add_done_callback(functools.partial(_forget, in_flight, delivery["id"]))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            for task in in_flight.values():
                task.cancel()
            await asyncio.gather(*in_flight.values(), return_exceptions=True)
            if client is not None:
                await client.aclose()

    def _due(self) -> tuple[list[dict[str, Any]], bool]:
        """The deliveries leased to this instance now, and whether the store was quiet (no event to
        expand, no delivery pending: nothing can fall due before the next write)."""
        if not self._store.has_work():
            return [], True
        self._store.expand()
        return self._store.claim_due(self._owner, self._lease_seconds, self._lapse_seconds), False

    async def _send(self, client: httpx.AsyncClient, delivery: dict[str, Any]) -> None:
        code, error = await self._attempt(client, delivery)
        ok = error is None
        attempts = int(delivery["attempts"]) + 1
        retry_in = None if ok or attempts > len(BACKOFF_SECONDS) else BACKOFF_SECONDS[attempts - 1]
        try:
            recorded = await asyncio.to_thread(
                self._store.record,
                delivery["id"],
                self._owner,
                ok=ok,
                code=code,
                error=error,
                retry_in=retry_in,
            )
        except StoreError as exc:
            log.warning(
                "webhook delivery %s: outcome not stored (%s); sent again after the lease",
                delivery["id"],
                exc,
            )
            return
        if not recorded:
            log.warning("webhook delivery %s: lease lost before its outcome was stored", delivery["id"])
        elif not ok:
            log.warning("webhook delivery %s of %s failed: %s", delivery["id"], delivery["webhook_id"], error)

    async def _attempt(
        self, client: httpx.AsyncClient, delivery: dict[str, Any]
    ) -> tuple[int | None, str | None]:
        """The status the receiver answered and the error to record, if any."""
        try:
            target, addresses = await vet_async(delivery["url"], self._policy)
        except TargetRefused as exc:
            return None, f"refused before connecting: {exc}"
        try:
            code = await asyncio.wait_for(
                self._post(client, target, addresses, delivery), self._attempt_seconds
            )
        except (httpx.HTTPError, TimeoutError) as exc:
            log.info("webhook delivery %s to %s: %s", delivery["id"], target.host, type(exc).__name__)
            return None, NO_ANSWER
        return code, None if 200 <= code < 300 else f"HTTP {code}"

    async def _post(
        self, client: httpx.AsyncClient, target: Target, addresses: list[IPAddress], delivery: dict[str, Any]
    ) -> int:
        body = delivery_body(delivery)
        headers = {
            "Content-Type": "application/json",
            "X-Orchestrator-Event": delivery["event_type"],
            DELIVERY_HEADER: str(delivery["id"]),
            SIGNATURE_HEADER: sign(delivery["secret"], body, int(time.time())),
        }
        return await post_pinned(client, target, addresses, body, headers)
