"""Agents as host processes. Output goes to files in the run directory, so a restarted service
re-attaches to a live agent and reads on from the last stored byte."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from pathlib import Path

from orchestrator.domain.types import LogStream
from orchestrator.runtimes.base import RunHandle, RunSpec, RuntimeError_
from orchestrator.runtimes.procfs import is_running, kill_marked, signal_group

_WRAPPER = (
    'd=$1; shift; trap : TERM INT HUP; "$@"; rc=$?; '
    'printf "%s\\n" "$rc" > "$d/exit_code.tmp" && mv "$d/exit_code.tmp" "$d/exit_code"; exit "$rc"'
)
_POLL_ADOPTED_SECONDS = 0.2


def _ref(pid: int) -> str:
    return f"host-pid-{pid}"


def _pid_of(ref: str) -> int | None:
    prefix = "host-pid-"
    if ref.startswith(prefix) and ref[len(prefix) :].isdigit():
        return int(ref[len(prefix) :])
    return None


class HostHandle:
    def __init__(self, agent_id: str, pid: int, run_dir: Path, proc: subprocess.Popen[bytes] | None) -> None:
        self._agent_id = agent_id
        self._pid = pid
        self._run_dir = run_dir
        self._proc = proc
        self._files: dict[LogStream, int] = {}

    @property
    def ref(self) -> str:
        return _ref(self._pid)

    @property
    def pid(self) -> int:
        return self._pid

    def read(self, stream: LogStream, offset: int, max_bytes: int) -> bytes:
        fd = self._files.get(stream)
        if fd is None:
            try:
                fd = os.open(self._run_dir / stream.value, os.O_RDONLY)
            except FileNotFoundError:
                return b""
            self._files[stream] = fd
        return os.pread(fd, max_bytes, offset)

    def poll(self) -> tuple[bool, int | None]:
        """(ended, exit code). The exit code is None when the run ended out of our sight."""
        if self._proc is not None:
            code = self._proc.poll()
            if code is None:
                return False, None
            return True, (128 - code if code < 0 else code)
        if is_running(self._pid, self._agent_id):
            return False, None
        return True, self._recorded_exit_code()

    async def wait(self) -> int | None:
        while True:
            ended, code = self.poll()
            if ended:
                return code
            await asyncio.sleep(_POLL_ADOPTED_SECONDS)

    def _recorded_exit_code(self) -> int | None:
        try:
            return int((self._run_dir / "exit_code").read_text().strip())
        except (OSError, ValueError):
            return None

    def terminate(self) -> None:
        signal_group(self._pid, signal.SIGTERM)

    def kill(self) -> None:
        signal_group(self._pid, signal.SIGKILL)
        kill_marked(self._agent_id)

    def sweep(self) -> None:
        kill_marked(self._agent_id)

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()


class HostRuntime:
    name = "host"

    async def start(self, spec: RunSpec) -> RunHandle:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        out = os.open(spec.run_dir / "stdout", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        err = os.open(spec.run_dir / "stderr", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            proc = subprocess.Popen(  # noqa: ASYNC220 - ~1 ms, cheaper than a thread hop (bench)
                ["/bin/sh", "-c", _WRAPPER, "agent", str(spec.run_dir), *spec.argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=spec.cwd,
                env=spec.env,
                start_new_session=True,
            )
        except OSError as exc:
            raise RuntimeError_(f"cannot start {spec.argv[0]!r}: {exc.strerror or exc}") from exc
        finally:
            os.close(out)
            os.close(err)
        (spec.run_dir / "pid").write_text(f"{proc.pid}\n")
        return HostHandle(spec.agent_id, proc.pid, spec.run_dir, proc)

    async def adopt(self, agent_id: str, ref: str, run_dir: Path) -> HostHandle | None:
        pid = _pid_of(ref)
        if pid is None or not run_dir.is_dir():  # noqa: ASYNC240 - one stat
            return None
        return HostHandle(agent_id, pid, run_dir, None)

    def check(self) -> str | None:
        return None if shutil.which("sh") else "no /bin/sh on this host"
