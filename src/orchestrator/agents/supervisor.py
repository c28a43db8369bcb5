"""Watching one run from start to end: output, timeout, kill, and the final verdict."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from orchestrator.agents.log_writer import LogWriter
from orchestrator.agents.output_tail import OutputTail
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.outcome import Ending, Verdict, judge_run
from orchestrator.domain.watchdog import Flag, Watchdog
from orchestrator.runtimes.base import RunHandle

log = logging.getLogger(__name__)

_POLL_MIN_SECONDS = 0.002
# The longest pause between two reads of an agent whose writes wake its supervisor, when its end does
# not (it is seen at a look), and when it does too (only in case a word was lost). The deadline and the
# watchdog's times (silence, wall-time budget, a flag's grace) cut a pause short, a little after them
# since the watchdog acts only once a limit is passed.
QUIET_LOOK_SECONDS = 1.0
TOLD_LOOK_SECONDS = 10.0
_PAST_DUE_SECONDS = 0.01

OutputWatcher = Callable[[Callable[[], None]], Callable[[], None] | None]


@dataclass
class RunResult:
    exit_code: int | None
    verdict: Verdict


class Supervisor:
    """One per running agent. `stop()` asks it to end the run; `run()` returns once all is stored."""

    def __init__(
        self,
        handle: RunHandle,
        tail: OutputTail,
        writer: LogWriter,
        *,
        deadline: float,
        timeout_seconds: float,
        grace_seconds: float,
        poll_max_seconds: float,
        finish: Callable[[RunResult], Awaitable[None]],
        poll_unwatched_seconds: float | None = None,
        watched: Callable[[], bool] = lambda: True,
        watchdog: Watchdog | None = None,
        on_flag: Callable[[Flag], None] | None = None,
        after_run: Callable[[], Awaitable[None]] | None = None,
        watch_output: OutputWatcher | None = None,
    ) -> None:
        # asked at the run's start for word of each write to the output files (a way to stop it), or
        # None: then the output is polled, every poll_max_seconds at most while `watched`
        self._watch_output = watch_output
        self._notified = False
        self._end_told = False
        self._woken = False
        self._after_run = after_run  # the workspace's after_run hook: once the run's lines are stored
        self._watchdog = watchdog
        self._on_flag = on_flag
        self._last_output = time.time()
        self.handle = handle
        self.tail = tail
        self._writer = writer
        self._deadline = deadline
        self._timeout_seconds = timeout_seconds
        self._grace = grace_seconds
        self._poll_max = poll_max_seconds
        self._poll_unwatched = max(poll_max_seconds, poll_unwatched_seconds or poll_max_seconds)
        self._watched = watched  # whether someone follows the live log now
        self._finish = finish
        self._stop_requested = asyncio.Event()
        self._nap: asyncio.Future[None] | None = None
        self._ending = Ending()
        self.done = asyncio.Event()

    def stop(self, by: str, reason: EndReason = EndReason.KILLED) -> None:
        if self._ending == Ending():
            self._ending = Ending(killed_by=by, killed_for=reason)
        self._stop_requested.set()
        self._wake_up()

    def look_now(self) -> None:
        """Ends the pause between two reads of the output now; the next pauses follow `watched`."""
        self._wake_up()

    async def run(self) -> None:
        try:
            exit_code = await self._watch()
            await self._sweep()
            await self._pump_all()
            last = self.tail.flush_partial()
            self._writer.add(last, self.tail.progress(len(last)))
            await self._writer.barrier()
            await self._run_after_run()
            verdict = judge_run(exit_code, self.tail.summary, self._ending, self.tail.last_stderr)
            await self._finish(RunResult(exit_code, verdict))
        finally:
            self.handle.close()
            self.done.set()

    async def _sweep(self) -> None:
        """What the run leaves behind, cleared; a failure there is logged and the verdict still written
        (an agent whose sweep failed must not stay `running` for ever)."""
        try:
            await asyncio.to_thread(self.handle.sweep)
        except Exception:
            log.exception("agent %s: clearing up after the run failed", self.tail.agent_id)

    async def _run_after_run(self) -> None:
        """The after_run hook, before the verdict is written (its lines reach the live log); a failure
        is logged, never the run's. Not when the service is shutting down."""
        if self._after_run is None or self._ending.killed_for is EndReason.SHUTDOWN:
            return
        try:
            await self._after_run()
        except Exception:
            log.exception("agent %s: the after_run hook could not run", self.tail.agent_id)

    async def _watch(self) -> int | None:
        exit_fd = self.handle.exit_fd()
        loop = asyncio.get_running_loop()
        if exit_fd is not None:
            loop.add_reader(exit_fd, self._wake_up)
        self._end_told = exit_fd is not None
        unwatch = None if self._watch_output is None else self._watch_output(self._wake_up)
        self._notified = unwatch is not None
        try:
            return await self._watch_until_end()
        finally:
            if exit_fd is not None:
                loop.remove_reader(exit_fd)
            if unwatch is not None:
                unwatch()

    async def _watch_until_end(self) -> int | None:
        delay = _POLL_MIN_SECONDS
        while True:
            got = await self._pump_once()
            ended, code = self.handle.poll()
            if ended:
                return code
            if self._stop_requested.is_set():
                return await self._end_run()
            if time.time() >= self._deadline:
                self._ending = Ending(timed_out_after=self._timeout_seconds)
                return await self._end_run()
            if got:
                self._last_output = time.time()
            if self._watchdog is not None and self._consult(self._watchdog):
                return await self._end_run()
            if got:
                delay = _POLL_MIN_SECONDS  # a polled run is read again soon: more is likely on its way
                await asyncio.sleep(0)
                continue
            pause = self._quiet_pause() if self._notified else delay
            await self._sleep(min(pause, max(0.0, self._deadline - time.time())))
            delay = min(delay * 2, self._poll_max if self._watched() else self._poll_unwatched)

    def _quiet_pause(self) -> float:
        """The pause of a run whose writes are told: until the watchdog's next time, if one comes first."""
        longest = TOLD_LOOK_SECONDS if self._end_told else QUIET_LOOK_SECONDS
        if self._watchdog is None:
            return longest
        now = time.time()
        due = self._watchdog.next_due(now, self._last_output)
        return longest if due is None else min(longest, due - now + _PAST_DUE_SECONDS)

    async def _sleep(self, seconds: float) -> None:
        """A pause between two polls, cut short by a stop or by the run's end (when the handle tells)."""
        if self._stop_requested.is_set() or self._woken:
            self._woken = False
            return
        loop = asyncio.get_running_loop()
        self._nap = nap = loop.create_future()
        timer = loop.call_later(seconds, self._wake_up)
        try:
            await nap
        finally:
            timer.cancel()
            self._nap = None

    def _wake_up(self) -> None:
        """Ends the pause under way, or the next one before it starts (a write seen while reading)."""
        if self._nap is not None and not self._nap.done():
            self._nap.set_result(None)
        else:
            self._woken = True

    def _consult(self, watchdog: Watchdog) -> bool:
        """True when the watchdog says to end the run now."""
        for decision in watchdog.check(self.tail.summary, time.time(), self._last_output):
            if isinstance(decision, Flag):
                if self._on_flag is not None:
                    self._on_flag(decision)
            else:
                if decision.end_reason is EndReason.BUDGET_EXCEEDED:
                    self._ending = Ending(budget_exceeded=decision.reason)
                else:
                    self._ending = Ending(
                        killed_by=f"the watchdog: {decision.reason}", killed_for=decision.end_reason
                    )
                return True
        return False

    async def _end_run(self) -> int | None:
        """SIGTERM to the group, output read meanwhile, SIGKILL to everything of the agent after the grace."""
        self.handle.terminate()
        give_up = time.monotonic() + self._grace
        while time.monotonic() < give_up:
            await self._pump_once()
            ended, code = self.handle.poll()
            if ended:
                return code
            await asyncio.sleep(0.05)
        log.info("agent %s ignored SIGTERM for %.1f s: killing it", self.tail.agent_id, self._grace)
        self.handle.kill()
        while True:
            ended, code = self.handle.poll()
            if ended:
                return code
            await asyncio.sleep(0.02)

    async def _pump_once(self) -> bool:
        lines, progress = self.tail.pump()
        if lines:
            self._writer.add(lines, progress)
            await self._writer.room()
        return bool(lines) or self.tail.moved

    async def _pump_all(self) -> None:
        while await self._pump_once():
            pass
