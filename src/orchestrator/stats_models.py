"""What `GET /api/stats` answers: the figures the dashboard's charts draw."""

from __future__ import annotations

from pydantic import BaseModel


class HourFigures(BaseModel):
    start: str
    spend_usd: float
    agents_running: int  # the most running at once during the hour
    queue_depth: int  # the most waiting in the queue at once during the hour


class DayFigures(BaseModel):
    start: str
    spend_usd: float


class TypeFigures(BaseModel):
    agent_type: str
    ended: int
    completed: int
    success_rate: float | None
    mean_duration_ms: float | None
    spend_usd: float


class Stats(BaseModel):
    now: str
    hours: list[HourFigures]
    days: list[DayFigures]
    by_type: list[TypeFigures]  # agents that ended within the hours' window
    truncated: bool  # the window held more rows than are read: its oldest are left out
