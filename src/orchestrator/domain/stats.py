"""The dashboard's charts from stored rows, without I/O: spend per hour and per day, the peak of agents
running and of the queue's depth in each hour, success rate and mean duration per agent type.

Times are the store's ISO-8601 UTC texts. Buckets are whole UTC hours (the last one is the current,
partial hour) and whole UTC days. An agent's spend counts in the bucket where it ended (the cost is
known then), a running one's where it was last updated."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ENDED = frozenset({"completed", "failed", "timeout", "killed", "rate_limited"})
RUNNING = frozenset({"starting", "running"})


def parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def hour_starts(now: datetime, hours: int) -> list[datetime]:
    last = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [last - HOUR * (hours - 1 - i) for i in range(hours)]


def day_starts(now: datetime, days: int) -> list[datetime]:
    last = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [last - DAY * (days - 1 - i) for i in range(days)]


def _index(starts: Sequence[datetime], width: timedelta, at: datetime) -> int | None:
    if not starts or at < starts[0] or at >= starts[-1] + width:
        return None
    return min(int((at - starts[0]) / width), len(starts) - 1)


def sums(
    starts: Sequence[datetime], width: timedelta, points: Iterable[tuple[datetime, float]]
) -> list[float]:
    """The values summed by the bucket their time falls in (outside every bucket: left out)."""
    out = [0.0] * len(starts)
    for at, value in points:
        i = _index(starts, width, at)
        if i is not None:
            out[i] += value
    return out


def peaks(
    starts: Sequence[datetime],
    width: timedelta,
    spans: Iterable[tuple[datetime, datetime | None]],
    now: datetime,
) -> list[int]:
    """For each bucket, the most spans [from, to) open at once during it (an open-ended span runs to now)."""
    changes: list[tuple[datetime, int]] = []
    for begin, end in spans:
        end = end or now
        if end <= begin:
            continue
        changes += [(begin, 1), (end, -1)]
    changes.sort(key=lambda c: (c[0], c[1]))  # an end before a start at the same instant
    out: list[int] = []
    level, k = 0, 0
    for start in starts:
        while k < len(changes) and changes[k][0] <= start:
            level += changes[k][1]
            k += 1
        peak = level
        stop = start + width
        while k < len(changes) and changes[k][0] < stop:
            level += changes[k][1]
            peak = max(peak, level)
            k += 1
        out.append(peak)
    return out


@dataclass(frozen=True)
class TypeFigures:
    agent_type: str
    ended: int
    completed: int
    success_rate: float | None
    mean_duration_ms: float | None
    spend_usd: float


def _duration_ms(row: Mapping[str, Any]) -> float | None:
    if row.get("duration_ms") is not None:
        return float(row["duration_ms"])
    begin, end = parse(row.get("started_at") or row.get("created_at")), parse(row.get("completed_at"))
    return (end - begin).total_seconds() * 1000 if begin and end and end >= begin else None


def by_type(agents: Iterable[Mapping[str, Any]], since: datetime) -> list[TypeFigures]:
    """Per agent type, of the agents that ended at `since` or later: how many, how many completed, the
    mean duration of those with one, and their spend."""
    ended: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in agents:
        end = parse(row.get("completed_at"))
        if row.get("status") in ENDED and end is not None and end >= since:
            ended[str(row.get("agent_type"))].append(row)
    out = []
    for kind in sorted(ended):
        rows = ended[kind]
        done = sum(1 for r in rows if r.get("status") == "completed")
        durations = [d for d in map(_duration_ms, rows) if d is not None]
        out.append(
            TypeFigures(
                agent_type=kind,
                ended=len(rows),
                completed=done,
                success_rate=done / len(rows) if rows else None,
                mean_duration_ms=sum(durations) / len(durations) if durations else None,
                spend_usd=sum(float(r.get("cost_usd") or 0) for r in rows),
            )
        )
    return out


def spend_points(agents: Iterable[Mapping[str, Any]]) -> list[tuple[datetime, float]]:
    out = []
    for row in agents:
        cost = row.get("cost_usd")
        at = parse(row.get("completed_at") or row.get("updated_at"))
        if cost and at is not None:
            out.append((at, float(cost)))
    return out


def running_spans(agents: Iterable[Mapping[str, Any]]) -> list[tuple[datetime, datetime | None]]:
    """When each agent ran: from its start (or creation) to its end; a running one to now. An ended
    agent with no end time is left out (it is not running)."""
    out: list[tuple[datetime, datetime | None]] = []
    for row in agents:
        begin = parse(row.get("started_at") or row.get("created_at"))
        end = parse(row.get("completed_at"))
        if begin is None or (end is None and row.get("status") not in RUNNING):
            continue
        out.append((begin, end))
    return out


def waiting_spans(items: Iterable[Mapping[str, Any]]) -> list[tuple[datetime, datetime | None]]:
    """When each queue item waited: from being queued to its start (or its end, or now while queued)."""
    out: list[tuple[datetime, datetime | None]] = []
    for row in items:
        begin = parse(row.get("queued_at"))
        waiting = row.get("status") == "queued"  # a requeued item waits again, whatever it started before
        end = None if waiting else parse(row.get("started_at")) or parse(row.get("completed_at"))
        if begin is None or (end is None and not waiting):
            continue
        out.append((begin, end))
    return out


@dataclass(frozen=True)
class Hour:
    start: datetime
    spend_usd: float
    agents_running: int
    queue_depth: int


@dataclass(frozen=True)
class Day:
    start: datetime
    spend_usd: float


@dataclass(frozen=True)
class Figures:
    hours: list[Hour]
    days: list[Day]
    by_type: list[TypeFigures]


def figures(
    agents: Sequence[Mapping[str, Any]],
    items: Sequence[Mapping[str, Any]],
    now: datetime,
    hours: int,
    days: int,
) -> Figures:
    """The charts' figures for the last `hours` hours and `days` days up to `now`."""
    hourly = hour_starts(now, hours)
    daily = day_starts(now, days)
    spend = spend_points(agents)
    spend_h = sums(hourly, HOUR, spend)
    running = peaks(hourly, HOUR, running_spans(agents), now)
    depth = peaks(hourly, HOUR, waiting_spans(items), now)
    spend_d = sums(daily, DAY, spend)
    return Figures(
        hours=[
            Hour(s, round(c, 6), r, q) for s, c, r, q in zip(hourly, spend_h, running, depth, strict=True)
        ],
        days=[Day(s, round(c, 6)) for s, c in zip(daily, spend_d, strict=True)],
        by_type=by_type(agents, hourly[0]),
    )


def window_start(now: datetime, hours: int, days: int) -> datetime:
    return min(hour_starts(now, hours)[0], day_starts(now, days)[0])
