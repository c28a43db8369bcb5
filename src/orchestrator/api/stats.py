"""`GET /api/stats`: the figures the dashboard's charts draw, computed from the store (a window of at
most a week of hours and 90 days), one computation at a time, each answer kept for 5 s."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request

from orchestrator.api.deps import ServicesDep
from orchestrator.api.errors import ERROR_RESPONSES
from orchestrator.domain import stats
from orchestrator.stats_models import DayFigures, HourFigures, Stats, TypeFigures
from orchestrator.store.stats import StatsStore

router = APIRouter(prefix="/api/stats", tags=["stats"], responses=ERROR_RESPONSES)


def _compute(store: StatsStore, hours: int, days: int) -> Stats:
    now = datetime.now(UTC)
    agents, items, cut = store.window(stats.iso(stats.window_start(now, hours, days)))
    found = stats.figures(agents, items, now, hours, days)
    return Stats(
        now=stats.iso(now),
        hours=[HourFigures(**{**vars(h), "start": stats.iso(h.start)}) for h in found.hours],
        days=[DayFigures(start=stats.iso(d.start), spend_usd=d.spend_usd) for d in found.days],
        by_type=[TypeFigures(**vars(t)) for t in found.by_type],
        truncated=cut,
    )


FRESH_SECONDS = 5.0  # an answer serves every caller of the same window that long: one computation


@router.get("", response_model=Stats)
async def get_stats(
    services: ServicesDep,
    request: Request,
    hours: Annotated[int, Query(ge=1, le=168)] = 24,
    days: Annotated[int, Query(ge=1, le=90)] = 14,
) -> Stats:
    kept: dict[tuple[int, int], tuple[float, Stats]] | None = getattr(request.app.state, "stats_kept", None)
    if kept is None:
        kept = request.app.state.stats_kept = {}
    found = kept.get((hours, days))
    if found is not None and time.monotonic() - found[0] < FRESH_SECONDS:
        return found[1]
    async with _computing:  # one at a time: a burst of callers waits for the first one's answer
        found = kept.get((hours, days))
        if found is not None and time.monotonic() - found[0] < FRESH_SECONDS:
            return found[1]
        answer = await anyio.to_thread.run_sync(_compute, StatsStore(services.db), hours, days)
        now = time.monotonic()
        for window in [w for w, (at, _) in kept.items() if now - at >= FRESH_SECONDS]:
            del kept[window]  # a caller walking every window must not grow the process
        kept[(hours, days)] = (now, answer)
        return answer


_computing = anyio.Lock()
