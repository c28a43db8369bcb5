"""Instances beat a heartbeat; whatever a dead instance held (agents, queue items, events) is taken over.

On SQLite only one instance runs, so at its start every other instance counts as dead. On PostgreSQL
an instance is dead when its heartbeat is older than INSTANCE_LAPSE_SECONDS. The same loop keeps house:
rows past their retention (GitHub webhook deliveries) are pruned at start and every HOUSEKEEPING_SECONDS."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from orchestrator.clock import iso_at
from orchestrator.services import Services
from orchestrator.store.db import StoreError
from orchestrator.store.instances import InstanceStore

log = logging.getLogger(__name__)

HOUSEKEEPING_SECONDS = 600.0  # between two prunings of rows past their retention (the first at start)


class Recovery:
    def __init__(self, services: Services) -> None:
        self._s = services
        self._instances = InstanceStore(services.db)
        self._hostname = socket.gethostname()
        self._single = services.db.is_sqlite
        self._stopping = threading.Event()
        self._started = False  # the first sweep (at start) also removes this instance's leftovers

    def register(self) -> None:
        self._instances.register(self._s.instance_id, self._hostname, os.getpid())

    def stop(self) -> None:
        self._instances.stop(self._s.instance_id)

    async def sweep(self) -> dict[str, object]:
        settings = self._s.settings
        live = (
            {self._s.instance_id}
            if self._single
            else self._instances.live(settings.instance_lapse_seconds) | {self._s.instance_id}
        )
        hosts = self._instances.hostnames()

        def dead(owner: str | None) -> bool:
            return owner not in live

        def same_host(owner: str | None) -> bool:
            return owner is None or hosts.get(owner, self._hostname) == self._hostname

        agents = await self._s.agents.take_over(dead, same_host)
        queue = self._s.queue.recover(dead)
        held = self._s.runner.take_over(dead)
        found: dict[str, object] = {"agents": agents, "queue": queue, **held}
        if removed := await asyncio.to_thread(self._s.agents.remove_leftover_containers, self._left_by(dead)):
            found["leftover_containers"] = removed
        self._started = True
        if agents["adopted"] or agents["lost"] or queue["requeued"] or any(held.values()) or removed:
            log.info("took over from stopped instances: %s", found)
        return found

    def _left_by(self, dead: Callable[[str | None], bool]) -> Callable[[str | None], bool]:
        """Whose ended agents' containers go: dead instances', and at start this instance's earlier life's
        (later its own are in hand, or an ended agent's hook it runs)."""
        if self._started:
            return dead
        return lambda owner: owner == self._s.instance_id or dead(owner)

    def housekeep(self) -> int:
        """Forgets GitHub webhook deliveries older than GITHUB_DELIVERY_RETENTION_HOURS; how many."""
        hours = self._s.settings.github_delivery_retention_hours
        return self._s.intake_store.prune_deliveries(iso_at(time.time() - hours * 3600))

    async def _housekeep(self) -> None:
        try:
            pruned = await asyncio.to_thread(self.housekeep)
        except StoreError as exc:
            log.warning("housekeeping failed: %s", exc)
            return
        if pruned:
            log.info("forgot %d GitHub webhook deliveries past their retention", pruned)

    def _beat_forever(self) -> None:
        """In a thread of its own, so a busy event loop never makes a live instance look dead."""
        interval = self._s.settings.instance_heartbeat_seconds
        while not self._stopping.wait(interval):
            try:
                self._instances.beat(self._s.instance_id)
            except StoreError as exc:
                log.warning("heartbeat failed: %s", exc)

    async def run(self) -> None:
        beater = threading.Thread(target=self._beat_forever, name="instance-heartbeat", daemon=True)
        beater.start()
        housekept = float("-inf")
        try:
            while True:
                await asyncio.sleep(self._s.settings.instance_heartbeat_seconds)
                if not self._single:
                    await self.sweep()
                if time.monotonic() - housekept >= HOUSEKEEPING_SECONDS:
                    housekept = time.monotonic()
                    await self._housekeep()
        finally:
            self._stopping.set()
