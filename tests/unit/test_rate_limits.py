"""How long work hit by a rate or usage limit waits: the reset it was given, else a doubling backoff."""

from __future__ import annotations

from orchestrator.domain import rate_limits
from orchestrator.domain.rate_limits import MAX_BACKOFF_SECONDS, MAX_PARK_SECONDS, resume_at

NOW = 1_000_000.0


def test_a_named_reset_is_the_resume_time() -> None:
    assert resume_at(NOW, NOW + 300, 60, 1) == NOW + 300
    assert resume_at(NOW, NOW + 300, 60, 7) == NOW + 300, "the task's earlier limits do not matter"


def test_a_reset_further_than_a_day_is_capped_at_a_day() -> None:
    assert resume_at(NOW, NOW + 10 * MAX_PARK_SECONDS, 60, 1) == NOW + MAX_PARK_SECONDS


def test_without_a_reset_the_backoff_doubles_with_each_limit_up_to_an_hour() -> None:
    waits = [resume_at(NOW, None, 60, attempts) - NOW for attempts in range(1, 9)]
    assert waits == [60, 120, 240, 480, 960, 1920, MAX_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS]
    assert resume_at(NOW, None, 60, 0) == NOW + 60, "a first limit not yet counted waits the base"


def test_a_task_gives_up_waiting_at_the_cap_of_limits() -> None:
    assert not rate_limits.gives_up(1, 2)
    assert rate_limits.gives_up(2, 2)
    assert "3 times" in rate_limits.given_up(3, 3)
