"""The runs this instance has in hand: a supervisor per running agent, the spawns under way, and the
verdict each run ends with written to the store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from orchestrator.agents.announcer import Announcer
from orchestrator.agents.log_writer import LogWriter
from orchestrator.agents.output_tail import OutputTail
from orchestrator.agents.output_watch import OutputWatch
from orchestrator.agents.supervisor import RunResult, Supervisor
from orchestrator.clock import utc_now
from orchestrator.domain.agent_tools import NO_TOOLS, AgentTools
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.stream_json import RunSummary
from orchestrator.domain.types import LogStream
from orchestrator.domain.watchdog import Budget, Prices, Watchdog, WatchRules
from orchestrator.runtimes.base import RunHandle
from orchestrator.settings import Settings
from orchestrator.store.agents import AgentRow, AgentStore

log = logging.getLogger(__name__)

# What the spawner put in an agent's metadata that its end keeps (a retry reads it back).
KEPT_METADATA = ("tools",)


def kept_metadata(tools: AgentTools | None) -> dict[str, Any]:
    """An agent's first metadata: its tools, permission mode and MCP servers (references, not values)."""
    return {} if tools is None or tools == NO_TOOLS else {"tools": tools.model_dump(mode="json")}


StoppedListener = Callable[[str, EndReason], Awaitable[None]]
_RESUMABLE = frozenset({EndReason.STALLED, EndReason.LOOPING})


BUDGETED_POLL_SECONDS = 0.25


class Supervision:
    def __init__(
        self,
        settings: Settings,
        agents: AgentStore,
        writer: LogWriter,
        announcer: Announcer,
        redact: Callable[[str], str],
        instance_id: str,
    ) -> None:
        self._settings = settings
        self._agents = agents
        self._writer = writer
        self._announcer = announcer
        self._redact = redact
        self._instance_id = instance_id
        self._supervisors: dict[str, Supervisor] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.starting: set[str] = set()  # spawns in progress here: not for a sweep to take over
        # spawns whose workspace hooks run before the CLI starts (agents/spawner.py): a kill cancels them
        self.before_start: dict[str, asyncio.Task[None]] = {}
        self.on_stopped: StoppedListener | None = None  # a run the watchdog ended as stalled or looping
        self._output_watch = OutputWatch() if settings.output_inotify else None

    @property
    def running_count(self) -> int:
        return len(self._tasks)

    def supervises(self, agent_id: str) -> bool:
        return agent_id in self._supervisors

    def in_hand(self, agent_id: str) -> bool:
        return agent_id in self._supervisors or agent_id in self.starting

    def _poll_unwatched(self, budget: dict[str, Any] | None) -> float:
        """An agent with a budget is read at least every BUDGETED_POLL_SECONDS, followed or not: its
        spending is to be seen, and the run ended by the watchdog, before the CLI's own budget stop."""
        seconds = self._settings.output_poll_unwatched_seconds
        return seconds if budget is None else min(seconds, BUDGETED_POLL_SECONDS)

    def supervisor(self, agent_id: str) -> Supervisor | None:
        return self._supervisors.get(agent_id)

    def look_now(self, agent_id: str) -> None:
        """The agent's output read now (a reader started following it)."""
        supervisor = self._supervisors.get(agent_id)
        if supervisor is not None:
            supervisor.look_now()

    def supervisors(self) -> list[Supervisor]:
        return list(self._supervisors.values())

    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks.values())

    def release(self, agent_id: str) -> None:
        """Another instance took the agent over: stop watching it, leave the run alone."""
        task = self._tasks.get(agent_id)
        if task is not None:
            task.cancel()

    def close(self) -> None:
        """Once no run is watched any more (shutdown)."""
        if self._output_watch is not None:
            self._output_watch.close()

    def watch(
        self,
        agent_id: str,
        handle: RunHandle,
        run_dir: Path,
        offsets: dict[LogStream, int],
        deadline: float,
        timeout: float,
        replay_upto: int = 0,
        budget: dict[str, Any] | None = None,
        after_run: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        tail = OutputTail(
            agent_id,
            handle,
            offsets=offsets,
            redact=self._redact,
            max_line_bytes=self._settings.log_line_max_bytes,
            summary=RunSummary(),
        )
        if replay_upto:
            tail.replay_summary(replay_upto)

        async def finish(result: RunResult) -> None:
            await self._finish(agent_id, tail.summary, result)
            if result.verdict.reason in _RESUMABLE and self.on_stopped is not None:
                await self.on_stopped(agent_id, result.verdict.reason)

        supervisor = Supervisor(
            handle,
            tail,
            self._writer,
            deadline=deadline,
            timeout_seconds=timeout,
            grace_seconds=self._settings.agent_kill_grace_seconds,
            poll_max_seconds=self._settings.output_poll_max_seconds,
            poll_unwatched_seconds=self._poll_unwatched(budget),
            watched=lambda: self._announcer.followed(agent_id),
            finish=finish,
            watchdog=Watchdog(self._rules(budget), deadline - timeout),
            on_flag=lambda flag: self._announcer.flagged(agent_id, flag),
            after_run=after_run,
            watch_output=None if self._output_watch is None else partial(self._output_watch.watch, run_dir),
        )
        self._supervisors[agent_id] = supervisor
        task = asyncio.create_task(supervisor.run(), name=f"supervise-{agent_id}")
        self._tasks[agent_id] = task

        def _done(t: asyncio.Task[None]) -> None:
            self._tasks.pop(agent_id, None)
            self._supervisors.pop(agent_id, None)
            if not t.cancelled() and t.exception() is not None:
                log.error("supervising %s failed", agent_id, exc_info=t.exception())

        task.add_done_callback(_done)

    async def _finish(self, agent_id: str, summary: RunSummary, result: RunResult) -> None:
        verdict = result.verdict
        row = await asyncio.to_thread(self._write_end, agent_id, summary, result)  # one thread hop
        if row is None:
            log.warning(
                "agent %s had ended or moved to another instance; verdict %s not recorded",
                agent_id,
                verdict.status,
            )
            return
        said = f": {row['error']}" if verdict.error else ""
        log.info("agent %s ended %s%s", agent_id, verdict.status.value, said)
        self._announcer.ended(agent_id, row)

    def _write_end(self, agent_id: str, summary: RunSummary, result: RunResult) -> AgentRow | None:
        """The run's verdict and figures written to its row, the metadata it must keep carried over; the
        row as written, or None when the move was refused."""
        verdict = result.verdict
        return self._agents.end(
            agent_id,
            verdict.status,
            owner=self._instance_id,
            metadata={
                **{k: (self._redact(v) if isinstance(v, str) else v) for k, v in summary.metadata().items()},
                "rate_limit_reset_at": verdict.reset_at,
            },
            keep=KEPT_METADATA,
            end_reason=verdict.reason.value,
            exit_code=result.exit_code,
            error=self._redact(verdict.error) if verdict.error else None,
            completed_at=utc_now(),
            session_id=summary.session_id,
            cost_usd=summary.cost_usd,
            input_tokens=summary.input_tokens,
            output_tokens=summary.output_tokens,
            num_turns=summary.num_turns,
            duration_ms=summary.duration_ms,
        )

    def _rules(self, budget: dict[str, Any] | None) -> WatchRules:
        st = self._settings
        defaults = Budget(usd=st.budget_usd, turns=st.budget_turns, wall_seconds=st.budget_wall_seconds)
        return WatchRules(
            budget=Budget(**budget).merged_over(defaults) if budget else defaults,
            prices=Prices(st.price_input_per_mtok, st.price_output_per_mtok),
            stall_seconds=st.agent_stall_seconds,
            stall_grace_seconds=st.agent_stall_grace_seconds,
            stall_action=st.agent_stall_action,
            loop_repeats=st.agent_loop_repeats,
        )
