"""The agent manager: spawn, supervise, kill, retry and re-adopt agents."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, cast

from orchestrator import errors
from orchestrator.agents import workspace
from orchestrator.agents.command import ClaudeInvocation, build_argv, build_env
from orchestrator.agents.log_bus import EndItem, FlagItem, LogBus
from orchestrator.agents.log_writer import LogWriter
from orchestrator.agents.output_tail import OutputTail
from orchestrator.agents.supervisor import RunResult, Supervisor
from orchestrator.clock import parse_iso, utc_now
from orchestrator.domain.ids import new_agent_id
from orchestrator.domain.stream_json import RunSummary
from orchestrator.domain.types import AgentStatus, AgentType, LogStream
from orchestrator.domain.watchdog import Budget, Flag, Prices, Watchdog, WatchRules
from orchestrator.runtimes.base import Limits, RunHandle, RunSpec, Runtime, RuntimeError_
from orchestrator.settings import Settings
from orchestrator.store.agents import AgentRow, AgentStore

log = logging.getLogger(__name__)


NEVER_STARTED = "never started: its service stopped before the agent's process was started"


def _started_ref(run_dir: str | None) -> str | None:
    """A host run records its pid before the database hears of it: enough to adopt a run caught mid-start."""
    if not run_dir:
        return None
    try:
        return f"host-pid-{int((Path(run_dir) / 'pid').read_text().strip())}"
    except (OSError, ValueError):
        return None


class AgentError(errors.ServiceError):
    """A request about agents that cannot be done. `status` picks its kind: `AgentError(m, 404)` is an
    `AgentNotFound`, 409 an `AgentConflict`, 503 an `AgentUnavailable` (a refusal for now)."""

    def __new__(cls, message: str, status: int = 400) -> Self:
        kind = _AGENT_KINDS.get(status, cls) if cls is AgentError else cls
        return cast(Self, super().__new__(kind, message))

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class AgentNotFound(AgentError, errors.NotFound):
    pass


class AgentConflict(AgentError, errors.Conflict):
    pass


class AgentUnavailable(AgentError, errors.Unavailable):
    pass


_AGENT_KINDS: dict[int, type[AgentError]] = {404: AgentNotFound, 409: AgentConflict, 503: AgentUnavailable}


class AgentTakenOver(AgentConflict):
    """Another instance declared this one dead and took the agent while it was being started."""


@dataclass(frozen=True)
class SpawnRequest:
    agent_type: AgentType
    prompt: str
    task_id: str | None = None
    repo: str | None = None
    model: str | None = None
    timeout_seconds: float | None = None
    max_turns: int | None = None
    retry_of: str | None = None
    workspace: str | None = None
    agent_id: str | None = None
    add_dirs: tuple[str, ...] = ()
    budget: Budget | None = None
    resume_session: str | None = None
    config_dir: str | None = None


EndListener = Callable[[AgentRow], None]


class AgentManager:
    def __init__(
        self,
        settings: Settings,
        agents: AgentStore,
        runtime: Runtime,
        writer: LogWriter,
        bus: LogBus,
        redact: Callable[[str], str],
        instance_id: str,
    ) -> None:
        self._settings = settings
        self._agents = agents
        self._runtime = runtime
        self._writer = writer
        self._bus = bus
        self._redact = redact
        self._instance_id = instance_id
        self._supervisors: dict[str, Supervisor] = {}
        self._starting: set[str] = set()  # spawns in progress here: not for a sweep to take over
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._end_listeners: list[EndListener] = []
        self._flag_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._accepting = True
        self.spawned = 0

    def on_end(self, listener: EndListener) -> None:
        self._end_listeners.append(listener)

    @property
    def running_count(self) -> int:
        return len(self._tasks)

    def claude_problem(self) -> str | None:
        path = self._settings.claude_bin
        if os.sep in path:
            ok = os.path.isfile(path) and os.access(path, os.X_OK)
        else:
            from shutil import which

            ok = which(path) is not None
        return (
            None
            if ok
            else f"claude CLI not found at {path!r}: run `orchestrator install-claude` or set CLAUDE_BIN"
        )

    async def spawn(self, req: SpawnRequest) -> AgentRow:
        if not self._accepting:
            raise AgentError("the service is shutting down", 503)
        problem = self.claude_problem() or self._runtime.check()
        if problem:
            raise AgentError(problem, 503)
        agent_id = req.agent_id or new_agent_id(req.agent_type)
        self._starting.add(agent_id)
        try:
            return await self._spawn(agent_id, req)
        finally:
            self._starting.discard(agent_id)

    async def _spawn(self, agent_id: str, req: SpawnRequest) -> AgentRow:
        run_dir = self._settings.resolved_runs_dir / agent_id
        ws = Path(req.workspace) if req.workspace else self._settings.resolved_workspaces_dir / agent_id
        timeout = req.timeout_seconds or self._settings.timeout_for(req.agent_type)
        max_turns = req.max_turns or self._settings.agent_max_turns
        model = req.model or self._settings.claude_model
        row = self._agents.insert(
            {
                "id": agent_id,
                "task_id": req.task_id,
                "status": AgentStatus.STARTING.value,
                "agent_type": req.agent_type.value,
                "prompt": self._redact(req.prompt),
                "model": model,
                "repo": req.repo,
                "workspace": str(ws),
                "timeout_seconds": timeout,
                "max_turns": max_turns,
                "retry_of": req.retry_of,
                "runtime": self._runtime.name,
                "instance_id": self._instance_id,
                "run_dir": str(run_dir),
                "metadata": "{}",
                "budget": json.dumps(dataclasses.asdict(req.budget)) if req.budget else None,
                "resumed_session": req.resume_session,
                "config_dir": req.config_dir or str(run_dir / "claude-config"),
            }
        )
        try:
            await asyncio.to_thread(workspace.prepare, ws, req.repo, self._settings.resolved_projects_dir)
            spec = self._run_spec(row, run_dir, ws, req.add_dirs)
            handle = await self._runtime.start(spec)
        except (workspace.WorkspaceError, RuntimeError_, OSError, ValueError) as exc:
            reason = self._redact(f"could not start: {exc}")
            self._agents.move(agent_id, AgentStatus.FAILED, error=reason, completed_at=utc_now())
            self._announce_end(agent_id)
            found = self._agents.get(agent_id)
            assert found is not None
            return found
        started = utc_now()
        if not self._agents.move(
            agent_id,
            AgentStatus.RUNNING,
            owner=self._instance_id,
            container_id=handle.ref,
            pid=handle.pid,
            started_at=started,
        ):
            handle.kill()
            handle.close()
            raise AgentTakenOver(
                f"agent {agent_id} was taken over while starting: its process was ended", 409
            )
        self.spawned += 1
        self._supervise(
            agent_id,
            handle,
            {LogStream.STDOUT: 0, LogStream.STDERR: 0},
            time.time() + timeout,
            timeout,
            budget=row.get("budget"),
        )
        log.info("agent %s started (%s, %s)", agent_id, req.agent_type.value, handle.ref)
        found = self._agents.get(agent_id)
        assert found is not None
        return found

    def _run_spec(self, row: AgentRow, run_dir: Path, ws: Path, add_dirs: tuple[str, ...] = ()) -> RunSpec:
        home = run_dir / "home"
        config_dir = Path(row["config_dir"])
        home.mkdir(parents=True, exist_ok=True)
        config_dir.mkdir(parents=True, exist_ok=True)
        argv = build_argv(
            ClaudeInvocation(
                claude_bin=self._settings.claude_bin,
                max_turns=row["max_turns"],
                model=row["model"],
                add_dirs=add_dirs,
                resume_session=row["resumed_session"],
            )
        )
        env = build_env(
            os.environ,
            agent_id=row["id"],
            home=home,
            config_dir=config_dir,
            running_as_root=os.geteuid() == 0,
            passthrough=self._settings.agent_env_passthrough,
        )
        return RunSpec(
            agent_id=row["id"],
            argv=argv,
            prompt=row["prompt"],
            env=env,
            cwd=ws,
            run_dir=run_dir,
            limits=Limits(wall_seconds=row["timeout_seconds"]),
            labels={"agent_id": row["id"], "instance_id": self._instance_id},
        )

    def _supervise(
        self,
        agent_id: str,
        handle: RunHandle,
        offsets: dict[LogStream, int],
        deadline: float,
        timeout: float,
        replay_upto: int = 0,
        budget: dict[str, Any] | None = None,
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
            if (
                supervisor.stopped_for in ("stalled", "looping")
                and self._settings.agent_stall_action == "kill_resume"
            ):
                try:
                    resumed = await self.retry(agent_id, resume=True)
                    log.info(
                        "agent %s resumed as %s after being %s",
                        agent_id,
                        resumed["id"],
                        supervisor.stopped_for,
                    )
                except AgentError as exc:
                    log.warning("agent %s could not be resumed: %s", agent_id, exc)

        supervisor = Supervisor(
            handle,
            tail,
            self._writer,
            deadline=deadline,
            timeout_seconds=timeout,
            grace_seconds=self._settings.agent_kill_grace_seconds,
            poll_max_seconds=self._settings.output_poll_max_seconds,
            finish=finish,
            watchdog=Watchdog(self._rules(budget), deadline - timeout),
            on_flag=lambda flag: self._flag(agent_id, flag),
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
        fields: dict[str, Any] = {
            "exit_code": result.exit_code,
            "error": self._redact(verdict.error) if verdict.error else None,
            "completed_at": utc_now(),
            "metadata": {
                **{k: (self._redact(v) if isinstance(v, str) else v) for k, v in summary.metadata().items()},
                "rate_limit_reset_at": verdict.reset_at,
            },
            "session_id": summary.session_id,
            "cost_usd": summary.cost_usd,
            "input_tokens": summary.input_tokens,
            "output_tokens": summary.output_tokens,
            "num_turns": summary.num_turns,
            "duration_ms": summary.duration_ms,
        }
        moved = await asyncio.to_thread(
            self._agents.move, agent_id, verdict.status, owner=self._instance_id, **fields
        )
        if not moved:
            log.warning(
                "agent %s had ended or moved to another instance; verdict %s not recorded",
                agent_id,
                verdict.status,
            )
            return
        log.info(
            "agent %s ended %s%s",
            agent_id,
            verdict.status.value,
            f": {fields['error']}" if verdict.error else "",
        )
        self._announce_end(agent_id)

    def _announce_end(self, agent_id: str) -> None:
        row = self._agents.get(agent_id)
        if row is None:
            return
        self._bus.publish(agent_id, EndItem(row["status"], row))
        for listener in self._end_listeners:
            try:
                listener(row)
            except Exception:
                log.exception("end listener failed for %s", agent_id)

    async def kill(self, agent_id: str) -> AgentRow:
        row = self._agents.get(agent_id)
        if row is None:
            raise AgentError(f"agent {agent_id!r} not found", 404)
        if AgentStatus(row["status"]).is_terminal:
            raise AgentError(f"agent {agent_id} has already ended ({row['status']})", 409)
        supervisor = self._supervisors.get(agent_id)
        if supervisor is None:
            raise AgentError(f"agent {agent_id} is not supervised by this instance", 409)
        supervisor.stop("api")
        try:
            await asyncio.wait_for(supervisor.done.wait(), self._settings.agent_kill_grace_seconds + 10)
        except TimeoutError:
            log.warning("agent %s did not end within the kill grace", agent_id)
        found = self._agents.get(agent_id)
        assert found is not None
        return found

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

    def _flag(self, agent_id: str, flag: Flag) -> None:
        entry = {"name": flag.name, "detail": flag.detail, "at": utc_now()}
        self._agents.add_flag(agent_id, entry)
        self._bus.publish(agent_id, FlagItem(flag.name, flag.detail))
        log.warning("agent %s flagged %s: %s", agent_id, flag.name, flag.detail)
        for listener in self._flag_listeners:
            listener(agent_id, entry)

    def on_flag(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        self._flag_listeners.append(listener)

    async def retry(self, agent_id: str, *, resume: bool = False) -> AgentRow:
        row = self._agents.get(agent_id)
        if row is None:
            raise AgentError(f"agent {agent_id!r} not found", 404)
        if not AgentStatus(row["status"]).is_terminal:
            raise AgentError(f"agent {agent_id} is still {row['status']}: kill it before retrying", 409)
        session = row["session_id"] or (row["metadata"] or {}).get("session_id")
        if resume and not session:
            raise AgentError(f"agent {agent_id} has no Claude session to resume: retry without resume", 409)
        prompt = (
            f"Continue the work from where you stopped (the earlier run ended {row['status']}: "
            f"{row['error'] or 'no reason given'}). The original request was:\n\n{row['prompt']}"
            if resume
            else row["prompt"]
        )
        return await self.spawn(
            SpawnRequest(
                agent_type=AgentType(row["agent_type"]),
                resume_session=session if resume else None,
                config_dir=row["config_dir"] if resume else None,
                budget=Budget(**row["budget"]) if row.get("budget") else None,
                prompt=prompt,
                task_id=row["task_id"],
                repo=row["repo"],
                model=row["model"],
                timeout_seconds=row["timeout_seconds"],
                max_turns=row["max_turns"],
                retry_of=agent_id,
                workspace=row["workspace"],
            )
        )

    def release(self, agent_id: str) -> None:
        """Another instance took the agent over: stop watching it, leave the run alone."""
        task = self._tasks.get(agent_id)
        if task is not None:
            task.cancel()

    def supervises(self, agent_id: str) -> bool:
        return agent_id in self._supervisors

    async def take_over(
        self, dead: Callable[[str | None], bool], same_host: Callable[[str | None], bool]
    ) -> dict[str, int]:
        """Adopts the active agents of dead instances (or of this one's earlier life): supervised on
        if reachable, failed with the reason if not. Each is claimed atomically: one adopter only."""
        counts = {"adopted": 0, "lost": 0}
        for row in self._agents.active():
            agent_id, owner = row["id"], row["instance_id"]
            if (
                agent_id in self._supervisors
                or agent_id in self._starting
                or (owner != self._instance_id and not dead(owner))
            ):
                continue
            if owner != self._instance_id and not self._agents.take(agent_id, owner, self._instance_id):
                continue
            row = self._agents.get(agent_id) or row
            ref = row["container_id"] or _started_ref(row["run_dir"])
            handle = None
            reachable = self._runtime.name != "host" or same_host(owner)
            if ref and row["run_dir"] and reachable:
                handle = await self._runtime.adopt(agent_id, ref, Path(row["run_dir"]))
            if handle is None:
                if row["status"] == AgentStatus.STARTING.value:
                    reason = NEVER_STARTED
                elif not reachable:
                    reason = (
                        f"lost: its instance {owner} died and its host process cannot be reached from here"
                    )
                else:
                    reason = "lost: its output could not be reached after a restart of the service"
                self._agents.move(agent_id, AgentStatus.FAILED, error=reason, completed_at=utc_now())
                self._announce_end(agent_id)
                counts["lost"] += 1
                continue
            if row["status"] == AgentStatus.STARTING.value:
                self._agents.move(
                    agent_id, AgentStatus.RUNNING, started_at=utc_now(), container_id=ref, pid=handle.pid
                )
            started = parse_iso(row["started_at"]).timestamp() if row["started_at"] else time.time()
            self._supervise(
                agent_id,
                handle,
                {LogStream.STDOUT: int(row["stdout_offset"]), LogStream.STDERR: int(row["stderr_offset"])},
                started + row["timeout_seconds"],
                row["timeout_seconds"],
                replay_upto=int(row["stdout_offset"]),
                budget=row.get("budget"),
            )
            counts["adopted"] += 1
            log.info(
                "adopted agent %s (%s) from offset %s", agent_id, row["container_id"], row["stdout_offset"]
            )
        return counts

    async def shutdown(self, kill_agents: bool) -> None:
        """Stops taking spawns; either ends the agents or leaves them running for the next start to adopt."""
        self._accepting = False
        if kill_agents:
            for supervisor in list(self._supervisors.values()):
                supervisor.stop("shutdown")
            if self._tasks:
                await asyncio.wait(
                    list(self._tasks.values()), timeout=self._settings.agent_kill_grace_seconds + 10
                )
        for task in list(self._tasks.values()):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=5)
