"""Workspace hooks (`[hooks]` of a repository's workflow file) run as the agent runs: through the same
runtime, from the agent's own run spec (same sandbox, mounts, network rules and allow-listed environment,
the workspace as cwd), never in the service's process. Each run has its own run directory
(`<agent run dir>/hooks/<name>`), marker and egress relay, is killed whole (process group, marked
processes, the sandbox's PID namespace; the container on Docker) when its timeout passes, and its output
is stored as the agent's log lines of stream `hook`, redacted like every line."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.agents import workspace
from orchestrator.agents.cancel_safe import settled, start_seen_through
from orchestrator.agents.log_writer import LogWriter
from orchestrator.clock import utc_now
from orchestrator.domain.types import LogStream
from orchestrator.domain.workflow_file import HookName
from orchestrator.runtimes.base import RunHandle, RunSpec, Runtime, RuntimeError_
from orchestrator.runtimes.procfs import MARKER_VARIABLE
from orchestrator.runtimes.sandbox import add_dirs
from orchestrator.store.logs import NewLine, Progress

log = logging.getLogger(__name__)

OUTPUT_CAP = 1 << 20  # bytes of a hook's output stored; the rest is said to be cut
TAIL_LINES = 20  # of its output in the agent's reason when a hook fails it
TAIL_CHARS = 2000
_POLL_SECONDS = 0.1
_KILLED_WAIT_SECONDS = 10.0
_CHUNK = 1 << 16
# stderr into stdout, so the stored lines keep the order they were written in
_SHELL = "exec 2>&1\n"


@dataclass(frozen=True)
class HookEnd:
    name: HookName
    ok: bool
    why: str  # "exited 0", "exited 3", "timed out after 5 s", "could not start: ..."
    tail: str  # the last lines of its output, redacted

    @property
    def reason(self) -> str:
        said = f"{self.name.value} hook {self.why}"
        return f"{said}: {self.tail}" if self.tail else said


class _Lines:
    """A hook's output file cut into redacted lines, stored as they come, up to OUTPUT_CAP bytes."""

    def __init__(self, agent_id: str, redact: Callable[[str], str], max_line_bytes: int) -> None:
        self.agent_id = agent_id
        self._redact = redact
        self._max = max_line_bytes
        self.offset = 0
        self._partial = b""
        self._cut = False
        self.last: list[str] = []

    def pump(self, handle: RunHandle) -> list[NewLine]:
        out: list[NewLine] = []
        while self.offset < OUTPUT_CAP:
            chunk = handle.read(LogStream.STDOUT, self.offset, min(_CHUNK, OUTPUT_CAP - self.offset))
            if not chunk:
                break
            self.offset += len(chunk)
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            out += [self._line(raw) for raw in lines]
        if self.offset >= OUTPUT_CAP and not self._cut and handle.read(LogStream.STDOUT, self.offset, 1):
            self._cut = True
            out += [self._line(self._partial), self._text(f"[hook output cut after {OUTPUT_CAP} bytes]")]
            self._partial = b""
        return out

    def rest(self) -> list[NewLine]:
        last, self._partial = self._partial, b""
        return [self._line(last)] if last else []

    def _line(self, raw: bytes) -> NewLine:
        if len(raw) > self._max:
            raw = raw[: self._max] + f" …[cut {len(raw) - self._max} bytes]".encode()
        return self._text(raw.decode("utf-8", "replace").replace("\x00", "\ufffd"))

    def _text(self, text: str) -> NewLine:
        redacted = self._redact(text)
        self.last = [*self.last[-(TAIL_LINES - 1) :], redacted]
        return NewLine(self.agent_id, utc_now(), LogStream.HOOK.value, redacted)

    def tail(self) -> str:
        text = "\n".join(line for line in self.last if line.strip())
        return text[-TAIL_CHARS:]


def hook_spec(agent: RunSpec, name: HookName, command: str, seconds: float) -> RunSpec:
    """The hook's run: the agent's spec with a shell for the CLI, its own id, marker and run directory."""
    run_id = f"{agent.agent_id}.{name.value}"
    return dataclasses.replace(
        agent,
        agent_id=run_id,
        argv=["/bin/sh", "-c", _SHELL + command],
        env={**agent.env, MARKER_VARIABLE: run_id},
        run_dir=agent.run_dir / "hooks" / name.value,
        limits=dataclasses.replace(agent.limits, wall_seconds=seconds),
        labels={**agent.labels, "agent_id": run_id, "hook_of": agent.agent_id},
        prompt="",
        mcp_config=None,  # the agent's MCP servers are the CLI's: a hook has no CLI
        program_is_cli=False,
        writable=(*agent.writable, *(Path(d) for d in add_dirs(agent.argv))),
    )


class HookRunner:
    def __init__(
        self,
        runtime: Runtime,
        writer: LogWriter,
        redact: Callable[[str], str],
        max_line_bytes: int,
    ) -> None:
        self._runtime = runtime
        self._writer = writer
        self._redact = redact
        self._max_line_bytes = max_line_bytes

    async def run(self, agent: RunSpec, name: HookName, command: str, seconds: float) -> HookEnd:
        """Runs one hook to its end (or kills it after `seconds`); its lines are stored when this returns."""
        if self._runtime.name == "kubernetes":
            return HookEnd(name, False, "not run: the kubernetes runtime does not run workspace hooks", "")
        spec = hook_spec(agent, name, command, seconds)
        await asyncio.to_thread(workspace.remove, spec.run_dir)  # an earlier run's files (a retry)
        lines = _Lines(agent.agent_id, self._redact, self._max_line_bytes)
        log.info("agent %s: %s hook starting", agent.agent_id, name.value)
        try:
            handle = await start_seen_through(self._runtime, spec)
        except (RuntimeError_, OSError) as exc:
            return HookEnd(name, False, self._redact(f"could not start: {exc}"), "")
        try:
            code, timed_out = await self._follow(handle, lines, seconds)
        finally:
            try:  # a kill landing here (again) must not leave the hook's processes or container running
                await settled(asyncio.ensure_future(asyncio.to_thread(handle.sweep)))
            finally:
                handle.close()
        self._store(agent.agent_id, lines.rest())
        await self._writer.barrier()
        if timed_out:
            why = f"timed out after {seconds:g} s and was killed"
        else:
            why = "ended out of sight" if code is None else f"exited {code}"
        end = HookEnd(name, code == 0 and not timed_out, why, lines.tail())
        log.info("agent %s: %s hook %s", agent.agent_id, name.value, why)
        return end

    async def _follow(self, handle: RunHandle, lines: _Lines, seconds: float) -> tuple[int | None, bool]:
        give_up = time.monotonic() + seconds
        while True:
            self._store(lines.agent_id, lines.pump(handle))
            ended, code = handle.poll()
            if ended:
                self._store(lines.agent_id, lines.pump(handle))
                return code, False
            if time.monotonic() >= give_up:
                break
            await asyncio.sleep(_POLL_SECONDS)
        handle.kill()
        for _ in range(int(_KILLED_WAIT_SECONDS / _POLL_SECONDS)):
            if handle.poll()[0]:
                break
            await asyncio.sleep(_POLL_SECONDS)
        self._store(lines.agent_id, lines.pump(handle))
        return None, True

    def _store(self, agent_id: str, new: list[NewLine]) -> None:
        if new:
            self._writer.add(new, Progress(agent_id, 0, 0, len(new)))
