"""Shared by the benchmarks: a real server with the fake model, and figure formatting."""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.settings import installed_claude
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.server import Server


@contextmanager
def bench_server(**env: str) -> Iterator[tuple[Server, FakeAnthropic]]:
    fake = FakeAnthropic()
    fake.start()
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "CLAUDE_BIN": os.environ.get("CLAUDE_BIN") or str(installed_claude()),
            "ANTHROPIC_BASE_URL": fake.base_url,
            "ANTHROPIC_API_KEY": "bench-dummy",
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "LOG_LEVEL": "WARNING",
        }
        server = Server(Path(tmp) / "data", {**base, **env})
        try:
            server.start()
            yield server, fake
        finally:
            server.close()
            fake.stop()


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
