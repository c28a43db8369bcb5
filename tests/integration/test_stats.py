"""The charts' figures from a known set of agents and queue items on a real store (SQLite, or the tests'
PostgreSQL when set)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from orchestrator.domain import stats
from orchestrator.store.db import Database
from orchestrator.store.stats import StatsStore
from orchestrator.store.tables import agents, queue, tasks
from tests.conftest import TEST_PG
from tests.support.postgres import new_database

NOW = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)


def at(hours_ago: float) -> str:
    return stats.iso(NOW - timedelta(hours=hours_ago))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(new_database(TEST_PG) if TEST_PG else f"sqlite:///{tmp_path / 'stats.db'}")
    database.migrate()
    yield database
    database.dispose()


def agent(
    n: int, kind: str, status: str, start: float, end: float | None, cost: float | None
) -> dict[str, Any]:
    return {
        "id": f"{kind}-{n}",
        "agent_type": kind,
        "status": status,
        "prompt": "p",
        "timeout_seconds": 60,
        "max_turns": 5,
        "runtime": "host",
        "created_at": at(start),
        "started_at": at(start),
        "completed_at": at(end) if end is not None else None,
        "updated_at": at(end if end is not None else 0),
        "cost_usd": cost,
        "duration_ms": int((start - end) * 3_600_000) if end is not None else None,
    }


def test_known_agents_and_queue_give_known_figures(db: Database) -> None:
    rows = [
        agent(1, "coding", "completed", start=2.9, end=2.4, cost=1.5),  # 09:36 → 10:06
        agent(2, "coding", "failed", start=2.5, end=2.1, cost=0.5),  # 10:00 → 10:24
        agent(3, "reviewer", "completed", start=1.0, end=0.75, cost=0.25),  # 11:30 → 11:45
        agent(4, "coding", "running", start=0.4, end=None, cost=None),  # 12:06 → now
        agent(5, "coding", "completed", start=30, end=29, cost=4.0),  # yesterday: only in the days
        agent(6, "verifier", "completed", start=24 * 20, end=24 * 20 - 1, cost=9.0),  # outside both windows
    ]
    with db.write() as conn:
        conn.execute(insert(agents), rows)
        for n in range(3):
            conn.execute(
                insert(tasks).values(
                    id=f"task-{n}", title="t", status="queued", created_at=at(3), updated_at=at(3), priority=0
                )
            )
        conn.execute(  # waited 10:00 → 10:30; 10:15 → 11:00; queued since 12:10 (still waiting)
            insert(queue),
            [
                {"task_id": "task-0", "position": 1, "status": "completed", "queued_at": at(2.5),
                 "started_at": at(2.0), "completed_at": at(1.5)},
                {"task_id": "task-1", "position": 2, "status": "processing", "queued_at": at(2.25),
                 "started_at": at(1.5), "completed_at": None},
                {"task_id": "task-2", "position": 3, "status": "queued", "queued_at": at(1 / 3),
                 "started_at": None, "completed_at": None},
            ],
        )  # fmt: skip
    found, items, cut = StatsStore(db).window(stats.iso(stats.window_start(NOW, 24, 14)))
    assert not cut
    assert "verifier" not in {r["agent_type"] for r in found}, "rows outside the window are not read"
    figures = stats.figures(found, items, NOW, 24, 14)

    hours = {h.start.hour: h for h in figures.hours}
    assert len(figures.hours) == 24 and figures.hours[-1].start == datetime(2026, 5, 4, 12, tzinfo=UTC)
    assert hours[10].spend_usd == 2.0  # agents 1 and 2 ended in the 10 o'clock hour
    assert hours[11].spend_usd == 0.25
    assert hours[9].agents_running == 1 and hours[10].agents_running == 2 and hours[12].agents_running == 1
    assert hours[11].agents_running == 1 and hours[8].agents_running == 0
    assert hours[10].queue_depth == 2 and hours[11].queue_depth == 0 and hours[12].queue_depth == 1
    assert sum(h.spend_usd for h in figures.hours) == 2.25

    days = {d.start.day: d.spend_usd for d in figures.days}
    assert len(figures.days) == 14 and days[4] == 2.25 and days[3] == 4.0 and sum(days.values()) == 6.25

    kinds = {t.agent_type: t for t in figures.by_type}
    assert set(kinds) == {"coding", "reviewer"}
    coding = kinds["coding"]
    assert (coding.ended, coding.completed, coding.success_rate) == (2, 1, 0.5)
    assert coding.mean_duration_ms == pytest.approx((0.5 + 0.4) / 2 * 3_600_000)
    assert kinds["reviewer"].success_rate == 1.0 and kinds["reviewer"].spend_usd == 0.25


def test_peaks_count_what_was_open_at_once() -> None:
    starts = stats.hour_starts(NOW, 3)  # 10, 11, 12 o'clock
    h = timedelta(hours=1)
    spans = [
        (starts[0] - h, starts[0] + h / 2),  # open at 10:00, ends 10:30
        (starts[0] + h / 2, starts[1]),  # 10:30 → 11:00: after the first ended, never two at once
        (starts[2], None),  # from 12:00 on
    ]
    assert stats.peaks(starts, h, spans, NOW) == [1, 0, 1]
    assert stats.peaks(starts, h, [*spans, (starts[0] + h / 4, starts[0] + h / 3)], NOW) == [2, 0, 1]
