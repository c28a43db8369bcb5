"""When GitHub says "slow down": how long it asks us to wait, and whether we wait or give up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SECONDARY_LIMIT_WAIT = 60.0


def is_rate_limited(status: int, headers: Mapping[str, str], message: str = "") -> bool:
    if status == 429:
        return True
    if status != 403:
        return False
    return (
        headers.get("x-ratelimit-remaining") == "0"
        or "retry-after" in headers
        or "rate limit" in message.lower()
    )


def wait_needed(headers: Mapping[str, str], now: float) -> float:
    """Seconds to wait, by `Retry-After`, else `x-ratelimit-reset`, else GitHub's advice of a minute."""
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    reset = headers.get("x-ratelimit-reset")
    if reset is not None and headers.get("x-ratelimit-remaining") == "0":
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    return SECONDARY_LIMIT_WAIT


@dataclass(frozen=True)
class WaitPolicy:
    """Wait while the total stays within `max_wait` seconds and `max_retries` tries; else give up."""

    max_wait: float = 10.0
    max_retries: int = 5

    def should_wait(self, needed: float, waited: float, retries: int) -> bool:
        return retries < self.max_retries and waited + needed <= self.max_wait
