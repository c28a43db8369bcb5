"""When to try again: a small policy that answers "after N seconds" or "give up"."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` retries after the first try, waiting `backoff * 2**n` seconds (at most `max_backoff`)."""

    attempts: int = 2
    backoff: float = 0.2
    max_backoff: float = 5.0

    def delay(self, retry: int, hint: float | None = None) -> float | None:
        """Seconds to wait before retry number `retry` (1-based), or None to give up.

        A server's Retry-After `hint` is taken when it is longer than the backoff, up to `max_backoff`.
        """
        if retry < 1 or retry > self.attempts:
            return None
        wait = min(self.backoff * 2.0 ** (retry - 1), self.max_backoff)
        if hint is not None:
            wait = min(max(wait, hint), self.max_backoff)
        return wait


NO_RETRY = RetryPolicy(attempts=0)

# Errors after which an idempotent request may be sent again (not a bad URL, say).
TRANSIENT = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


def retryable(exc: httpx.TransportError, idempotent: bool) -> bool:
    """Whether a request that failed with `exc` may be sent again: only calls that are safe to repeat
    (reads, setting a value), never one that could spawn an agent or create a task twice."""
    return idempotent and isinstance(exc, TRANSIENT)
