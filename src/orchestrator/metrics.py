"""Prometheus metrics, computed from the services' own state when scraped: no hooks in the hot paths.

Counts and sums come from the store (fleet-wide: every instance sharing the database reports the same
numbers) or from counters the services keep (this instance only: log lines written, SSE readers,
agents spawned here). Delays are cumulative histograms fed at scrape time: each scrape reads the most
recent rows (agents, queue items, processed events) and observes, once, every delay it has not seen
yet. A row is missed only if more than `window` newer rows arrived between two scrapes."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from orchestrator.clock import parse_iso
from orchestrator.domain.events import EventStatus
from orchestrator.domain.types import AgentStatus, AgentType, QueueItemStatus
from orchestrator.services import Services
from orchestrator.store.agents import AgentFilter

PREFIX = "orchestrator"
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0)
WINDOW = 100

Row = dict[str, Any]


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one stored ISO timestamp to another; None when either is missing or unreadable."""
    if not start or not end:
        return None
    try:
        delta = (parse_iso(end) - parse_iso(start)).total_seconds()
    except ValueError:
        return None
    return max(0.0, delta)


class DelayHistogram:
    """A cumulative histogram fed from rows at scrape time; each row's delay is observed once."""

    def __init__(
        self,
        name: str,
        documentation: str,
        key: Callable[[Row], Hashable],
        delay: Callable[[Row], float | None],
        buckets: tuple[float, ...] = DELAY_BUCKETS,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._key = key
        self._delay = delay
        self._bounds = (*buckets, math.inf)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._seen: set[Hashable] = set()

    def feed(self, rows: Iterable[Row]) -> None:
        """Observes the rows not seen before; forgets those that left the window (they never return)."""
        seen_now: set[Hashable] = set()
        for row in rows:
            value = self._delay(row)
            if value is None:
                continue
            key = self._key(row)
            seen_now.add(key)
            if key not in self._seen:
                self.observe(value)
        self._seen = seen_now

    def observe(self, value: float) -> None:
        self._sum += value
        for i, bound in enumerate(self._bounds):
            if value <= bound:
                self._counts[i] += 1
                break

    @property
    def count(self) -> int:
        return sum(self._counts)

    def family(self) -> HistogramMetricFamily:
        cumulative, buckets = 0, []
        for bound, n in zip(self._bounds, self._counts, strict=True):
            cumulative += n
            buckets.append(("+Inf" if math.isinf(bound) else repr(bound), float(cumulative)))
        return HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=self._sum)


def _spawn_delay(row: Row) -> float | None:
    return seconds_between(row.get("created_at"), row.get("started_at"))


def _queue_delay(row: Row) -> float | None:
    return seconds_between(row.get("queued_at"), row.get("started_at"))


def _event_delay(row: Row) -> float | None:
    return seconds_between(row.get("created_at"), row.get("processed_at"))


class ServiceCollector(Collector):
    """Reads the services at each scrape. Thread-safe: scrapes may overlap."""

    def __init__(self, services: Services, window: int = WINDOW) -> None:
        self._services = services
        self._window = window
        self._lock = threading.Lock()
        self.spawn_delay = DelayHistogram(
            f"{PREFIX}_agent_spawn_delay_seconds",
            "Seconds from an agent's creation to its process running.",
            key=lambda r: r["id"],
            delay=_spawn_delay,
        )
        self.queue_delay = DelayHistogram(
            f"{PREFIX}_queue_delay_seconds",
            "Seconds a queue item waited from queued to started.",
            key=lambda r: (r["id"], r.get("started_at")),
            delay=_queue_delay,
        )
        self.event_delay = DelayHistogram(
            f"{PREFIX}_event_handling_delay_seconds",
            "Seconds from an event's creation to its processing.",
            key=lambda r: r["id"],
            delay=_event_delay,
        )

    def collect(self) -> Iterator[Any]:
        with self._lock:
            yield from self._agents()
            yield from self._queue()
            yield from self._events()
            yield from self._process_local()

    def _agents(self) -> Iterator[Any]:
        s = self._services
        stats = s.agent_store.analytics()
        by_status = GaugeMetricFamily(
            f"{PREFIX}_agents_by_status", "Agents in the database by status.", labels=["status"]
        )
        for status in AgentStatus:
            by_status.add_metric([status.value], stats["by_status"].get(status.value, 0))
        yield by_status
        by_type = GaugeMetricFamily(
            f"{PREFIX}_agents_by_type", "Agents in the database by type.", labels=["agent_type"]
        )
        for kind in AgentType:
            by_type.add_metric([kind.value], stats["by_type"].get(kind.value, 0))
        yield by_type
        yield CounterMetricFamily(
            f"{PREFIX}_agent_cost_usd", "Cost of all agents' runs in US dollars.", stats["total_cost_usd"]
        )
        tokens = CounterMetricFamily(
            f"{PREFIX}_agent_tokens", "Model tokens used by all agents.", labels=["direction"]
        )
        tokens.add_metric(["input"], stats["total_input_tokens"])
        tokens.add_metric(["output"], stats["total_output_tokens"])
        yield tokens
        recent, _ = s.agent_store.page(AgentFilter(), limit=self._window, offset=0)
        self.spawn_delay.feed(recent)
        yield self.spawn_delay.family()

    def _queue(self) -> Iterator[Any]:
        s = self._services
        active, done = s.queue_store.items(completed_limit=self._window)
        settings = s.queue_store.settings()
        queued = sum(1 for i in active if i["status"] == QueueItemStatus.QUEUED.value)
        processing = sum(1 for i in active if i["status"] == QueueItemStatus.PROCESSING.value)
        yield GaugeMetricFamily(f"{PREFIX}_queue_depth", "Queue items waiting to start.", queued)
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_processing", "Queue items whose agent is at work.", processing
        )
        yield GaugeMetricFamily(f"{PREFIX}_queue_paused", "1 if the queue is paused.", int(settings.paused))
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_max_concurrent", "Queue items allowed to run at once.", settings.max_concurrent
        )
        self.queue_delay.feed([*active, *done])
        yield self.queue_delay.family()

    def _events(self) -> Iterator[Any]:
        s = self._services
        by_status = GaugeMetricFamily(
            f"{PREFIX}_events", "Events in the database by status.", labels=["status"]
        )
        for status in EventStatus:
            _, total = s.event_store.page(
                statuses=(status.value,), type_=None, task_id=None, limit=1, offset=0
            )
            by_status.add_metric([status.value], total)
        yield by_status
        processed, _ = s.event_store.page(
            statuses=(EventStatus.PROCESSED.value,), type_=None, task_id=None, limit=self._window, offset=0
        )
        self.event_delay.feed(processed)
        yield self.event_delay.family()

    def _process_local(self) -> Iterator[Any]:
        s = self._services
        yield CounterMetricFamily(
            f"{PREFIX}_log_lines_written", "Agent log lines stored by this instance.", s.writer.lines_written
        )
        yield CounterMetricFamily(
            f"{PREFIX}_log_flush_failures",
            "Failed log batch writes on this instance.",
            s.writer.failed_flushes,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_sse_clients", "Live log readers (SSE) on this instance.", s.bus.reader_count
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_agents_running_here", "Agents supervised by this instance.", s.agents.running_count
        )
        yield CounterMetricFamily(
            f"{PREFIX}_agents_spawned", "Agents started by this instance.", s.agents.spawned
        )
        yield CounterMetricFamily(
            f"{PREFIX}_queue_started", "Queue items started by this instance.", s.queue.started
        )
        yield CounterMetricFamily(
            f"{PREFIX}_events_handled", "Events handled by this instance.", s.events.handled
        )


def build_registry(services: Services, *, process: bool = True) -> CollectorRegistry:
    """A registry of its own per app (never the global one), so several apps in a process never clash."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(services))
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry
