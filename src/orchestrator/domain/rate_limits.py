"""How long work hit by the model API's rate or usage limit waits before it resumes. Pure: the caller
gives the time."""

from __future__ import annotations

MAX_PARK_SECONDS = 24 * 3600.0
MAX_BACKOFF_SECONDS = 3600.0


def resume_at(now: float, reset_at: float | None, backoff_seconds: float, attempts: int) -> float:
    """The reset time the model API or the CLI printed, trusted only within a day; without one, a backoff
    doubling with each limit the same task met (capped at an hour)."""
    if reset_at is not None:
        return min(float(reset_at), now + MAX_PARK_SECONDS)
    backoff: float = backoff_seconds * 2.0 ** max(0, attempts - 1)
    return now + min(backoff, MAX_BACKOFF_SECONDS)


def gives_up(limits_met: int, max_per_task: int) -> bool:
    """Whether a task stops waiting for limits: a run reports its own limit (its output is the agent's to
    write), so without a cap a hostile agent could keep its task parked and resuming for ever."""
    return limits_met >= max_per_task


def given_up(limits_met: int, max_per_task: int) -> str:
    return f"rate limited {limits_met} times (RATE_LIMIT_MAX_PER_TASK is {max_per_task})"
