"""A sliding one-minute window of spawn requests. Pure: the caller gives the time."""

from __future__ import annotations

from collections import deque

WINDOW_SECONDS = 60.0


class SpawnRate:
    def __init__(self, per_minute: int | None) -> None:
        self.per_minute = per_minute
        self._times: deque[float] = deque()

    def take(self, now: float) -> float | None:
        """Counts one request at `now`; None when it may go on, else the seconds until one may."""
        if self.per_minute is None:
            return None
        while self._times and now - self._times[0] >= WINDOW_SECONDS:
            self._times.popleft()
        if len(self._times) >= self.per_minute:
            return WINDOW_SECONDS - (now - self._times[0])
        self._times.append(now)
        return None
