"""Shared by the benchmarks: a real server with the fake model, process figures from /proc, and
figure formatting."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from orchestrator.clock import parse_iso
from orchestrator.settings import installed_claude
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.server import Server

RESULT_LINE = '{"type":"result","subtype":"success","is_error":false,"result":"ok"}'
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def claude_bin() -> str:
    return os.environ.get("CLAUDE_BIN") or str(installed_claude())


@contextmanager
def bench_server(**env: str) -> Iterator[tuple[Server, FakeAnthropic]]:
    fake = FakeAnthropic()
    fake.start()
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "CLAUDE_BIN": claude_bin(),
            "ANTHROPIC_BASE_URL": fake.base_url,
            "ANTHROPIC_API_KEY": "bench-dummy",
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "LOG_LEVEL": "WARNING",
            "SPAWN_RATE_PER_MINUTE": "1000000",  # the benchmarks spawn faster than a team would
        }
        if os.environ.get("PYTHONPATH"):  # to measure another checkout of the service
            base["PYTHONPATH"] = os.environ["PYTHONPATH"]
        server = Server(Path(tmp) / "data", {**base, **env})
        try:
            server.start()
            yield server, fake
        finally:
            server.close()
            fake.stop()


def tiny_claude(directory: Path) -> str:
    """A `claude` that prints one successful result line and exits: agents that end at once."""
    script = directory / "claude"
    script.write_text(f"#!/bin/sh\necho '{RESULT_LINE}'\n")
    script.chmod(0o755)
    return str(script)


def baseline_true_spawn(n: int = 200) -> float:
    """Seconds per Popen + wait of /bin/true, in this process."""
    start = time.perf_counter()
    for _ in range(n):
        subprocess.Popen(["/bin/true"]).wait()
    return (time.perf_counter() - start) / n


def server_pid(server: Server) -> int:
    assert server.proc is not None
    return server.proc.pid


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process itself (its children are not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssPeak:
    """Samples a process's RSS every 50 ms in a thread; `peak` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except OSError:
                return

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


def seconds_between(earlier: str, later: str) -> float:
    return (parse_iso(later) - parse_iso(earlier)).total_seconds()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50) * 1000:.1f} ms, p99 {percentile(values, 99) * 1000:.1f} ms, "
        f"mean {statistics.fmean(values) * 1000:.1f} ms (n={len(values)})"
    )


def wait_exited(server: Server, agents: int | list[str], timeout: float) -> None:
    """Waits, without asking the service anything, until the agents' processes have exited (given ids,
    those; given a number, that many of any): their wrapper's `exit_code` file in the run directory. A
    benchmark that times the service's own CPU looks here first and asks the API only once the runs are
    over, so its polls do not weigh on the figure."""
    runs = server.data_dir / "runs"
    deadline = time.monotonic() + timeout

    def exited() -> bool:
        if isinstance(agents, int):
            return sum(1 for _ in runs.glob("*/exit_code")) >= agents
        return all((runs / agent_id / "exit_code").exists() for agent_id in agents)

    while not exited():
        assert time.monotonic() < deadline, f"agent processes still running after {timeout} s"
        time.sleep(0.02)


def wait_drained(client: httpx.Client, timeout: float, poll: float = 0.05) -> dict[str, Any]:
    """Polls GET /api/queue until nothing is queued or processing; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.get("/api/queue").json()
        if status["queued"] == 0 and status["processing"] == 0:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(poll)
