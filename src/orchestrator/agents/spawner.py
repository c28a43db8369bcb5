"""Starting an agent: its row, its workspace, its process, then handing the run to supervision."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from shutil import which
from typing import Any, ParamSpec, TypeVar

from orchestrator.agents import workspace
from orchestrator.agents.announcer import Announcer
from orchestrator.agents.blanks import Blanks
from orchestrator.agents.cancel_safe import settled, start_seen_through
from orchestrator.agents.command import ClaudeInvocation, build_argv, build_env
from orchestrator.agents.errors import AgentError, AgentTakenOver
from orchestrator.agents.hooks import HookEnd, HookRunner
from orchestrator.agents.requests import SpawnRequest
from orchestrator.agents.supervision import Supervision, kept_metadata
from orchestrator.clock import utc_now
from orchestrator.domain.agent_tools import NO_TOOLS, AgentTools, mcp_config
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.ids import new_agent_id
from orchestrator.domain.types import AgentStatus, LogStream
from orchestrator.domain.workflow_file import HookName
from orchestrator.forge.sources import ForgeRepos
from orchestrator.runtimes.base import MCP_CONFIG_FILE, Limits, RunSpec, Runtime, RuntimeError_
from orchestrator.settings import Settings
from orchestrator.store.agents import AgentRow, AgentStore, ClaimLost

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")
# A spawn's blocking steps before its process starts (database writes that may wait for SQLite's write
# lock, the workspace, the run directory) run in these threads, not on the event loop, nor in the default
# pool: 30 spawns at once would queue ahead of every other request's hop there (health's checks).
SPAWN_THREADS = 2


HOME_DIR = "home"  # an agent's HOME and its CLI's configuration, in its run directory
CONFIG_DIR = "claude-config"


def _run_layout(run_dir: Path, files: tuple[str, ...]) -> None:
    """A run directory as a blank: HOME, the CLI's configuration, and the runtime's files, empty."""
    (run_dir / HOME_DIR).mkdir()
    (run_dir / CONFIG_DIR).mkdir()
    for name in files:
        os.close(os.open(run_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))


@dataclasses.dataclass(frozen=True)
class _Ready:
    """A spawn's set-up as it came back from the spawn threads: a run spec, or why there is none."""

    req: SpawnRequest
    row: AgentRow
    spec: RunSpec | None
    problem: str = ""


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
        self.hooks: HookRunner | None = None  # runs a repository's workspace hooks (set by the manager)
        self._threads = ThreadPoolExecutor(SPAWN_THREADS, thread_name_prefix="spawn")
        self.workspace_blanks = Blanks(settings.resolved_workspaces_dir, workspace.fresh_layout)
        self._run_blanks = Blanks(
            settings.resolved_runs_dir, functools.partial(_run_layout, files=runtime.run_files)
        )

    def make_blanks(self) -> None:
        """Blank run directories and workspaces made from now on, ahead of the first agents."""
        self.workspace_blanks.start()
        self._run_blanks.start()

    def stop_making_blanks(self) -> None:
        self.workspace_blanks.close()
        self._run_blanks.close()

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
        """The agent's row once its process runs (or failed to start); with after_create or before_run
        hooks, once those are under way: they run in the background and the CLI starts after them."""
        if not self.accepting:
            raise AgentError("the service is shutting down", 503)
        problem = self.claude_problem() or self._runtime.check()
        if problem:
            raise AgentError(problem, 503)
        agent_id = req.agent_id or new_agent_id(req.agent_type)
        self._supervision.starting.add(agent_id)
        later = False
        try:
            req, row, spec = await self._prepare(agent_id, req)
            if spec is None:
                return row
            if not self._hooks_first(req):
                return await self._launch(agent_id, req, row, spec)
            job = asyncio.create_task(self._launch_after_hooks(agent_id, req, row, spec))
            self._supervision.before_start[agent_id] = job
            later = True
            return row
        finally:
            if not later:
                self._supervision.starting.discard(agent_id)

    def _within_task_purse(self, req: SpawnRequest) -> SpawnRequest:
        """A task's budget is one purse for all its agents: each gets what its earlier ones left (or its
        own budget, if tighter); none starts once the purse is empty."""
        if req.task_id is None:
            return req
        held = self._agents.task_purse(req.task_id)
        if held is None:
            return req
        purse, spent = held
        left = purse.remaining_after(spent)
        if (limit := left.spent_out()) is not None:
            raise AgentError(f"budget_exceeded: task {req.task_id} has spent its budget ({limit})", 409)
        return dataclasses.replace(req, budget=left.tighter(req.budget))

    async def _prepare(
        self, agent_id: str, req: SpawnRequest
    ) -> tuple[SpawnRequest, AgentRow, RunSpec | None]:
        """The request held to its task's purse, the agent's row, workspace and run spec, in one trip to
        the spawn threads (each trip costs a thread hop); no spec when it could not be set up (failed)."""
        try:
            ready = await self._off_loop(self._ready, agent_id, req)
        except ClaimLost as exc:
            raise AgentTakenOver(f"agent {agent_id} was not started: {exc}", 409) from exc
        if ready.spec is None:
            return ready.req, await self._not_started(agent_id, EndReason.START_FAILED, ready.problem), None
        return ready.req, ready.row, ready.spec

    def _ready(self, agent_id: str, req: SpawnRequest) -> _Ready:
        """`_prepare`'s blocking part, in a spawn thread."""
        req = self._within_task_purse(req)
        run_dir = self._settings.resolved_runs_dir / agent_id
        ws = Path(req.workspace) if req.workspace else self._settings.resolved_workspaces_dir / agent_id
        timeout = req.timeout_seconds or self._settings.timeout_for(req.agent_type)
        max_turns = req.max_turns or self._settings.agent_max_turns
        model = req.model or self._settings.claude_model
        row = self._insert(agent_id, req, run_dir, ws, timeout, max_turns, model)
        try:
            return _Ready(req, row, self._set_up(row, req, run_dir, ws))
        except (workspace.WorkspaceError, OSError, ValueError) as exc:
            return _Ready(req, row, None, f"could not start: {exc}")

    def _set_up(self, row: AgentRow, req: SpawnRequest, run_dir: Path, ws: Path) -> RunSpec:
        """The workspace and the run directory, and what the runtime is to start in them."""
        workspace.prepare(
            ws,
            req.repo,
            self._settings.resolved_projects_dir,
            forge=ForgeRepos.of(self._settings),
            blanks=self.workspace_blanks,
        )
        tools = req.tools or NO_TOOLS
        return self._run_spec(row, run_dir, ws, req.add_dirs, tools, self._budget_usd(req))

    async def _launch(self, agent_id: str, req: SpawnRequest, row: AgentRow, spec: RunSpec) -> AgentRow:
        try:
            hook_failed = await self._hooks_before(spec, req)
            if hook_failed is not None:
                return await self._not_started(agent_id, EndReason.HOOK_FAILED, hook_failed.reason)
            handle = await start_seen_through(self._runtime, spec)
        except (RuntimeError_, OSError, ValueError) as exc:
            return await self._not_started(agent_id, EndReason.START_FAILED, f"could not start: {exc}")
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
        timeout = float(row["timeout_seconds"])
        self._supervision.watch(
            agent_id,
            handle,
            spec.run_dir,
            {LogStream.STDOUT: 0, LogStream.STDERR: 0},
            time.time() + timeout,
            timeout,
            budget=row.get("budget"),
            after_run=self._after_run(spec, req),
        )
        log.info("agent %s started (%s, %s)", agent_id, req.agent_type.value, handle.ref)
        return {**row, **running, "status": AgentStatus.RUNNING.value}  # as just written: no re-read

    @staticmethod
    def _hooks_first(req: SpawnRequest) -> bool:
        hooks = req.hooks
        return hooks is not None and bool(hooks.before_run or (req.workspace_created and hooks.after_create))

    async def _launch_after_hooks(
        self, agent_id: str, req: SpawnRequest, row: AgentRow, spec: RunSpec
    ) -> None:
        """`_launch` in the background (hooks may take minutes; the caller, e.g. the workflow's one event
        loop, does not wait). A kill while the hooks run ends the agent killed; the service stopping ends
        it never_started, so its step runs again at the next start."""
        try:
            await self._launch(agent_id, req, row, spec)
        except asyncio.CancelledError:
            if self.accepting:
                await self._not_started(agent_id, EndReason.KILLED, "killed while its workspace hooks ran")
            else:
                await self._not_started(
                    agent_id, EndReason.NEVER_STARTED, "the service stopped during its hooks"
                )
        except AgentError as exc:
            log.warning("agent %s: %s", agent_id, exc)
        except Exception as exc:
            log.exception("agent %s: could not start after its hooks", agent_id)
            await self._not_started(agent_id, EndReason.START_FAILED, f"could not start: {exc}")
        finally:
            self._supervision.before_start.pop(agent_id, None)
            self._supervision.starting.discard(agent_id)

    async def _not_started(self, agent_id: str, why: EndReason, reason: str) -> AgentRow:
        """Ends the agent before its process ran. The write runs in a spawn thread and is seen through even
        when the spawn's job is cancelled (again) meanwhile; the end is told on the loop once written."""
        write = asyncio.get_running_loop().run_in_executor(
            self._threads, functools.partial(self._record_not_started, agent_id, why, reason)
        )
        try:
            return (await settled(write))[1]
        finally:
            # told once: a kill cancelling the wait for a hook_failed write then writes nothing more
            if write.done() and not write.cancelled() and write.exception() is None and write.result()[0]:
                self._announcer.ended(agent_id, write.result()[1])

    def _record_not_started(self, agent_id: str, why: EndReason, reason: str) -> tuple[bool, AgentRow]:
        moved = self._agents.move(
            agent_id,
            why.status,
            end_reason=why.value,
            error=self._redact(reason),
            completed_at=utc_now(),
        )
        return moved, self._row(agent_id)

    async def _hooks_before(self, spec: RunSpec, req: SpawnRequest) -> HookEnd | None:
        """after_create (on a workspace just made), then before_run: the first that fails, else None."""
        hooks = req.hooks
        if hooks is None or self.hooks is None:
            return None
        names = [HookName.AFTER_CREATE] if req.workspace_created else []
        for name in [*names, HookName.BEFORE_RUN]:
            command = hooks.command(name)
            if command:
                end = await self.hooks.run(spec, name, command, hooks.timeout_seconds)
                if not end.ok:
                    return end
        return None

    def _after_run(self, spec: RunSpec, req: SpawnRequest) -> Callable[[], Awaitable[None]] | None:
        hooks, runner = req.hooks, self.hooks
        command = hooks.command(HookName.AFTER_RUN) if hooks else None
        if not command or hooks is None or runner is None:
            return None

        async def after_run() -> None:
            end = await runner.run(spec, HookName.AFTER_RUN, command, hooks.timeout_seconds)
            if not end.ok:
                log.warning("agent %s: %s", spec.agent_id, self._redact(end.reason))

        return after_run

    async def run_hook(
        self, row: AgentRow, name: HookName, command: str, seconds: float, writable: tuple[str, ...]
    ) -> HookEnd:
        """A hook in the sandbox an ended agent ran in (its run directory, HOME and workspace)."""
        if self.hooks is None:
            return HookEnd(name, False, "not run: no hook runner", "")
        spec = self._run_spec(row, Path(row["run_dir"]), Path(row["workspace"]), writable)
        return await self.hooks.run(spec, name, command, seconds)

    def _row(self, agent_id: str) -> AgentRow:
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
                "metadata": json.dumps(kept_metadata(req.tools)),
                "budget": json.dumps(dataclasses.asdict(req.budget)) if req.budget else None,
                "resumed_session": req.resume_session,
                "config_dir": req.config_dir or str(run_dir / CONFIG_DIR),
            },
            for_queue_item=req.queue_item,
        )

    def _run_spec(
        self,
        row: AgentRow,
        run_dir: Path,
        ws: Path,
        add_dirs: tuple[str, ...] = (),
        tools: AgentTools = NO_TOOLS,
        max_budget_usd: float | None = None,
    ) -> RunSpec:
        home = run_dir / HOME_DIR
        config_dir = Path(row["config_dir"])
        if not run_dir.exists():
            self._run_blanks.take(run_dir)
        home.mkdir(parents=True, exist_ok=True)
        config_dir.mkdir(parents=True, exist_ok=True)
        mcp = self._mcp_config(tools)
        argv = build_argv(
            ClaudeInvocation(
                claude_bin=self._settings.claude_bin,
                max_turns=row["max_turns"],
                model=row["model"],
                add_dirs=add_dirs,
                resume_session=row["resumed_session"],
                max_budget_usd=max_budget_usd,
                allowed_tools=tuple(tools.allowed_tools),
                disallowed_tools=tuple(tools.disallowed_tools),
                permission_mode=tools.mode,
                mcp_config=None if mcp is None else str(run_dir / MCP_CONFIG_FILE),
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
            mcp_config=mcp,
        )

    def _budget_usd(self, req: SpawnRequest) -> float | None:
        """The agent's budget in USD as the watchdog holds it (its own, else BUDGET_USD), for the CLI's
        own stop (`--max-budget-usd`) should the watchdog see the cost too late."""
        own = req.budget.usd if req.budget is not None else None
        return own if own is not None else self._settings.budget_usd

    def _mcp_config(self, tools: AgentTools) -> str | None:
        """The `--mcp-config` document, `${env:NAME}` filled from the service's environment for the names
        MCP_ENV_ALLOWLIST lists (never one of the service's own secrets); None without servers."""
        if not tools.mcp_servers:
            return None
        document = mcp_config(tools.mcp_servers, os.environ, self._settings.mcp_env_names)
        return json.dumps(document)
