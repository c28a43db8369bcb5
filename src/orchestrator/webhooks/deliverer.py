"""Sends the outbox's due deliveries: each a signed JSON POST, recorded per attempt, retried with backoff.
A slow or failing receiver costs only its own bounded attempts; nothing else waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
from typing import Any

import httpx

from orchestrator.store.webhooks import WebhookStore

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Orchestrator-Signature"
BACKOFF_SECONDS = (1.0, 5.0, 30.0, 120.0, 600.0)


def _forget(in_flight: dict[int, asyncio.Task[None]], delivery_id: int, _task: asyncio.Task[None]) -> None:
    in_flight.pop(delivery_id, None)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Deliverer:
    def __init__(self, store: WebhookStore, *, timeout: float = 5.0, poll_seconds: float = 0.5) -> None:
        self._store = store
        self._timeout = timeout
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        in_flight: dict[int, asyncio.Task[None]] = {}
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            try:
                while True:
                    for delivery in await asyncio.to_thread(self._store.due):
                        if delivery["id"] not in in_flight:
                            task = asyncio.create_task(self._send(client, delivery))
                            in_flight[delivery["id"]] = task
                            task.add_done_callback(functools.partial(_forget, in_flight, delivery["id"]))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll)
                    self._wake.clear()
            finally:
                for task in in_flight.values():
                    task.cancel()
                await asyncio.gather(*in_flight.values(), return_exceptions=True)

    async def _send(self, client: httpx.AsyncClient, delivery: dict[str, Any]) -> None:
        body = delivery["payload"].encode()
        headers = {
            "Content-Type": "application/json",
            "X-Orchestrator-Event": delivery["event_type"],
            "X-Orchestrator-Delivery": str(delivery["id"]),
            SIGNATURE_HEADER: sign(delivery["secret"], body),
        }
        code: int | None = None
        error: str | None = None
        try:
            response = await client.post(delivery["url"], content=body, headers=headers)
            code = response.status_code
            ok = 200 <= code < 300
            if not ok:
                error = f"HTTP {code}"
        except httpx.HTTPError as exc:
            ok = False
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = int(delivery["attempts"]) + 1
        retry_in = None if ok or attempts > len(BACKOFF_SECONDS) else BACKOFF_SECONDS[attempts - 1]
        await asyncio.to_thread(
            self._store.record, delivery["id"], ok=ok, code=code, error=error, retry_in=retry_in
        )
        if not ok:
            log.warning("webhook delivery %s to %s failed (%s)", delivery["id"], delivery["url"], error)
