"""Word of a write to an agent's output files (inotify on its run directory): the supervisor reads when
something was printed, and a silent agent costs no reads. Where inotify cannot be had (not Linux, the
kernel's watch limit reached), `watch` says so and the supervisor polls instead."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

from inotify_simple import INotify, flags

log = logging.getLogger(__name__)

# A file in the directory written, made or moved in (an exit code); the directory itself only, not a
# link put in its place.
_MASK = flags.MODIFY | flags.CREATE | flags.MOVED_TO | flags.CLOSE_WRITE | flags.ONLYDIR | flags.DONT_FOLLOW


class OutputWatch:
    """One inotify descriptor for all the agents of the service, read on the event loop."""

    def __init__(self) -> None:
        self._inotify: INotify | None = None
        self._failed = False
        self._wakes: dict[int, Callable[[], None]] = {}

    def watch(self, directory: Path, wake: Callable[[], None]) -> Callable[[], None] | None:
        """`wake` is called on the event loop after each write to a file in `directory`. Returns what ends
        the watch, or None when the directory cannot be watched (then nothing will call `wake`)."""
        inotify = self._open()
        if inotify is None:
            return None
        try:
            wd = inotify.add_watch(directory, _MASK)
        except OSError as e:
            log.warning("cannot watch %s for output (%s): polling it", directory, e)
            return None
        self._wakes[wd] = wake
        return partial(self._unwatch, wd)

    def close(self) -> None:
        if self._inotify is not None:
            asyncio.get_running_loop().remove_reader(self._inotify.fileno())
            self._inotify.close()
            self._inotify = None
        self._wakes.clear()

    def _open(self) -> INotify | None:
        if self._inotify is None and not self._failed:
            try:
                self._inotify = INotify(nonblocking=True)
            except OSError as e:
                self._failed = True
                log.warning("inotify is not to be had (%s): agents' output is polled", e)
                return None
            asyncio.get_running_loop().add_reader(self._inotify.fileno(), self._drain)
        return self._inotify

    def _unwatch(self, wd: int) -> None:
        if self._wakes.pop(wd, None) is not None and self._inotify is not None:
            with contextlib.suppress(OSError):  # the directory went first, and its watch with it
                self._inotify.rm_watch(wd)

    def _drain(self) -> None:
        assert self._inotify is not None
        woken: set[int] = set()
        for event in self._inotify.read(timeout=0):
            if event.mask & flags.Q_OVERFLOW:
                woken.update(self._wakes)
            elif event.mask & flags.IGNORED:
                self._wakes.pop(event.wd, None)
            else:
                woken.add(event.wd)
        for wd in woken:
            wake = self._wakes.get(wd)
            if wake is not None:
                wake()
