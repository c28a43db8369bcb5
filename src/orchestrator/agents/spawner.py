"""Starting an agent: its row, its workspace, its process, then handing the run to supervision."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from shutil import which
from typing import Any, ParamSpec, TypeVar

from orchestrator.agents import workspace
from orchestrator.agents.announcer import Announcer
from orchestrator.agents.command import ClaudeInvocation, build_argv, build_env
from orchestrator.agents.errors import AgentError, AgentTakenOver
from orchestrator.agents.requests import SpawnRequest
from orchestrator.agents.supervision import Supervision
from orchestrator.clock import utc_now
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.ids import new_agent_id
from orchestrator.domain.types import AgentStatus, LogStream
from orchestrator.forge.sources import ForgeRepos
from orchestrator.runtimes.base import Limits, RunSpec, Runtime, RuntimeError_
from orchestrator.settings import Settings
from orchestrator.store.agents import AgentRow, AgentStore, ClaimLost

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")
# A spawn's blocking steps before its process starts (database writes that may wait for SQLite's write
# lock, the workspace, the run directory) run in these threads, not on the event loop, nor in the default
# pool: 30 spawns at once would queue ahead of every other request's hop there (health's checks).
SPAWN_THREADS = 2


class Spawner:
    def __init__(
        self,
        settings: Settings,
        agents: AgentStore,
        runtime: Runtime,
        supervision: Supervision,
        announcer: Announcer,
        redact: Callable[[str], str],
        instance_id: str,
    ) -> None:
        self._settings = settings
        self._agents = agents
        self._runtime = runtime
        self._supervision = supervision
        self._announcer = announcer
        self._redact = redact
        self._instance_id = instance_id
        self.accepting = True
        self.spawned = 0
        self._threads = ThreadPoolExecutor(SPAWN_THREADS, thread_name_prefix="spawn")

    async def _off_loop(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, functools.partial(fn, *args, **kwargs)
        )

    def claude_problem(self) -> str | None:
        path = self._settings.claude_bin
        ok = os.path.isfile(path) and os.access(path, os.X_OK) if os.sep in path else which(path) is not None
        return (
            None
            if ok
            else f"claude CLI not found at {path!r}: run `orchestrator install-claude` or set CLAUDE_BIN"
        )

    async def spawn(self, req: SpawnRequest) -> AgentRow:
        if not self.accepting:
            raise AgentError("the service is shutting down", 503)
        problem = self.claude_problem() or self._runtime.check()
        if problem:
            raise AgentError(problem, 503)
        req = await self._off_loop(self._within_task_purse, req)
        agent_id = req.agent_id or new_agent_id(req.agent_type)
        self._supervision.starting.add(agent_id)
        try:
            return await self._spawn(agent_id, req)
        finally:
            self._supervision.starting.discard(agent_id)

    def _within_task_purse(self, req: SpawnRequest) -> SpawnRequest:
        """A task's budget is one purse for all its agents: each gets what its earlier ones left (or its
        own budget, if tighter); none starts once the purse is empty."""
        if req.task_id is None:
            return req
        purse, spent = self._agents.task_purse(req.task_id)
        if purse is None:
            return req
        left = purse.remaining_after(spent)
        if (limit := left.spent_out()) is not None:
            raise AgentError(f"budget_exceeded: task {req.task_id} has spent its budget ({limit})", 409)
        return dataclasses.replace(req, budget=left.tighter(req.budget))

    async def _spawn(self, agent_id: str, req: SpawnRequest) -> AgentRow:
        run_dir = self._settings.resolved_runs_dir / agent_id
        ws = Path(req.workspace) if req.workspace else self._settings.resolved_workspaces_dir / agent_id
        timeout = req.timeout_seconds or self._settings.timeout_for(req.agent_type)
        max_turns = req.max_turns or self._settings.agent_max_turns
        model = req.model or self._settings.claude_model
        try:
            row = await self._off_loop(self._insert, agent_id, req, run_dir, ws, timeout, max_turns, model)
        except ClaimLost as exc:
            raise AgentTakenOver(f"agent {agent_id} was not started: {exc}", 409) from exc
        try:
            spec = await self._off_loop(self._prepare, row, req, run_dir, ws)
            handle = await self._runtime.start(spec)
        except (workspace.WorkspaceError, RuntimeError_, OSError, ValueError) as exc:
            reason = self._redact(f"could not start: {exc}")
            ended = await self._off_loop(self._start_failed, agent_id, reason)
            self._announcer.ended(agent_id)
            return ended
        started = utc_now()
        running: dict[str, Any] = {
            "container_id": handle.ref,
            "pid": handle.pid,
            "started_at": started,
            "updated_at": started,
        }
        # not in a thread: no await may come between the process's start and its supervisor (a spawn
        # cancelled there would leave a process nobody watches)
        if not self._agents.move(agent_id, AgentStatus.RUNNING, owner=self._instance_id, **running):
            handle.kill()
            handle.close()
            raise AgentTakenOver(
                f"agent {agent_id} was taken over while starting: its process was ended", 409
            )
        self.spawned += 1
        self._supervision.watch(
            agent_id,
            handle,
            {LogStream.STDOUT: 0, LogStream.STDERR: 0},
            time.time() + timeout,
            timeout,
            budget=row.get("budget"),
        )
        log.info("agent %s started (%s, %s)", agent_id, req.agent_type.value, handle.ref)
        return {**row, **running, "status": AgentStatus.RUNNING.value}  # as just written: no re-read

    def _prepare(self, row: AgentRow, req: SpawnRequest, run_dir: Path, ws: Path) -> RunSpec:
        """The workspace and the run directory, and what the runtime is to start in them."""
        workspace.prepare(
            ws, req.repo, self._settings.resolved_projects_dir, forge=ForgeRepos.of(self._settings)
        )
        return self._run_spec(row, run_dir, ws, req.add_dirs)

    def _start_failed(self, agent_id: str, reason: str) -> AgentRow:
        self._agents.move(
            agent_id,
            AgentStatus.FAILED,
            end_reason=EndReason.START_FAILED.value,
            error=reason,
            completed_at=utc_now(),
        )
        found = self._agents.get(agent_id)
        assert found is not None
        return found

    def _insert(
        self,
        agent_id: str,
        req: SpawnRequest,
        run_dir: Path,
        ws: Path,
        timeout: float,
        max_turns: int,
        model: str | None,
    ) -> AgentRow:
        return self._agents.insert(
            {
                "id": agent_id,
                "task_id": req.task_id,
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
            },
            for_queue_item=req.queue_item,
        )

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
