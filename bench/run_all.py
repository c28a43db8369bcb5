"""Runs every benchmark, one after another, each in its own process, and writes bench/RESULTS.md: the
date, the machine, and for each benchmark its figures beside the baseline measured in the same run and
the ratio. A benchmark that fails is recorded with its error; the others still run.

    .venv/bin/python -m bench.run_all                        # everything (takes a while)
    .venv/bin/python -m bench.run_all --only bench_queue --quick --output /tmp/results.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).parent
ROOT = BENCH_DIR.parent


@dataclass(frozen=True)
class Row:
    """One line of a benchmark's table: a figure, the baseline it is read against, their ratio.
    Paths are dotted keys into the benchmark's JSON; a missing ratio is figure / baseline."""

    label: str
    figure: str
    baseline: str | None = None
    ratio: str | None = None


@dataclass(frozen=True)
class Bench:
    name: str
    rows: tuple[Row, ...]
    args: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    notes: str = ""


def _main_call(module: str, **kwargs: Any) -> tuple[str, ...]:
    """argv running `module.main(**kwargs)`, for benchmarks whose sizes are arguments of main only."""
    given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return ("-c", f"from bench.{module} import main; main({given})")


BENCHES: tuple[Bench, ...] = (
    Bench(
        "bench_agents",
        (
            Row(
                "spawn request p50, 50 in a row (ms)",
                "spawn.spawn_p50_ms",
                "spawn.true_spawn_ms",
                "spawn.ratio_to_true",
            ),
            Row("spawn request p50, one at a time (ms)", "spawn.spawn_alone_p50_ms", "spawn.true_spawn_ms"),
            Row("spawn request mean (ms)", "spawn.spawn_mean_ms", "spawn.true_spawn_ms"),
            Row("spawns per second", "spawn.spawns_per_second"),
            Row(
                "real claude spawn request p50 (ms)",
                "spawn.real_claude_spawn_p50_ms",
                "spawn.true_spawn_ms",
            ),
            Row(
                "log lines stored per second",
                "log_lines.lines_per_second",
                "log_lines.raw_sqlite_rows_per_second",
                "log_lines.ratio_to_raw",
            ),
            Row("SSE delay p50 (ms)", "sse.p50_ms"),
            Row("SSE delay p99 (ms)", "sse.p99_ms"),
        ),
        notes="baselines: Popen + wait of /bin/true; raw batched SQLite inserts of the same rows. Spawns of"
        " one-line agents in the default sandbox: 50 in a row (the next sent as the previous is answered,"
        " while the earlier agents' sandboxes start and end), and 30 one at a time (each once the one"
        " before has ended, 0.15 s later)",
    ),
    Bench(
        "bench_api",
        (
            Row("GET /api/health (requests/s)", "health.rps", "bare_asgi.rps", "health_ratio"),
            Row("GET /api/agents (requests/s)", "agents.rps", "bare_asgi.rps", "agents_ratio"),
            Row("GET /api/health p99 (ms)", "health.p99_ms", "bare_asgi.p99_ms"),
            Row("GET /api/agents p99 (ms)", "agents.p99_ms", "bare_asgi.p99_ms"),
        ),
        quick=_main_call("bench_api", rounds=1),
        notes="baseline: a bare ASGI app on the same server stack",
    ),
    Bench(
        "bench_events",
        (
            Row("event to agent start p50 (ms)", "p50_ms", "true_spawn_ms", "p50_ratio_to_true"),
            Row("event to agent start p99 (ms)", "p99_ms", "true_spawn_ms"),
        ),
        quick=_main_call("bench_events", n=5),
        notes="baseline: Popen + wait of /bin/true",
    ),
    Bench(
        "bench_queue",
        (
            Row(
                "item end to next claim p50 (ms)",
                "item_gap_p50_ms",
                "true_spawn_ms",
                "item_gap_p50_ratio_to_true",
            ),
            Row(
                "agent end to next agent start p50 (ms)",
                "agent_gap_p50_ms",
                "true_spawn_ms",
                "agent_gap_p50_ratio_to_true",
            ),
            Row("agent end to next agent start p99 (ms)", "agent_gap_p99_ms", "true_spawn_ms"),
            Row("tasks per second", "tasks_per_second"),
        ),
        quick=_main_call("bench_queue", n=5),
        notes="baseline: Popen + wait of /bin/true",
    ),
    Bench(
        "bench_peers",
        (
            Row(
                "10 tasks at concurrency 3, wall (s)", "service_wall_s", "xargs_wall_s", "wall_ratio_to_xargs"
            ),
            Row("overhead per task (s)", "service_overhead_per_task_s", "xargs_overhead_per_task_s"),
            Row("service CPU (s)", "service_cpu_s"),
            Row("service peak RSS (MB)", "service_rss_peak_mb"),
            Row(
                "CLI mean run, process start to end (s)",
                "service_cli_run_s",
                "xargs_cli_run_s",
                "cli_run_ratio_to_xargs",
            ),
            Row(
                "CLI mean run, its own duration_ms (s)",
                "service_cli_said_s",
                "xargs_cli_said_s",
                "cli_said_ratio_to_xargs",
            ),
        ),
        notes="baseline: `xargs -P3` of the same plain CLI runs, in turns with the service, twice (medians)",
    ),
    Bench(
        "bench_runtimes",
        (
            Row(
                "host: shell agent first line (ms)",
                "host.shell_agent.first_line_ms",
                "baseline_popen_true_ms",
            ),
            Row("host: shell agent kill (ms)", "host.shell_agent.kill_ms"),
            Row("host: claude agent first line (ms)", "host.claude_agent.first_line_ms"),
            Row(
                "host+bwrap: shell agent first line (ms)",
                "host+bwrap.shell_agent.first_line_ms",
                "baseline_bare_bwrap.first_line_ms",
            ),
            Row("host+bwrap: claude agent first line (ms)", "host+bwrap.claude_agent.first_line_ms"),
            Row(
                "host+bwrap+egress: shell agent first line (ms)",
                "host+bwrap+egress.shell_agent.first_line_ms",
                "host+bwrap.shell_agent.first_line_ms",
            ),
            Row(
                "host+bwrap+egress: claude agent first line (ms)",
                "host+bwrap+egress.claude_agent.first_line_ms",
                "host+bwrap.claude_agent.first_line_ms",
            ),
            Row(
                "docker: shell agent first line (ms)",
                "docker.shell_agent.first_line_ms",
                "baseline_bare_docker_run.first_line_ms",
            ),
            Row(
                "docker: shell agent kill (ms)",
                "docker.shell_agent.kill_ms",
                "baseline_bare_docker_run.kill_ms",
            ),
            Row("docker: claude agent first line (ms)", "docker.claude_agent.first_line_ms"),
        ),
        quick=("--runs", "2", "--claude-runs", "1"),
        notes=(
            "baselines: Popen of /bin/true, bare bwrap, bare `docker run` (where available); the egress"
            " relay's rows beside the same sandbox without it"
        ),
    ),
    Bench(
        "bench_load",
        (
            Row(
                "service CPU per agent (s)",
                "load.service_cpu_s_per_agent",
                "baseline.service_cpu_s_per_agent",
                "cpu_per_agent_ratio",
            ),
            Row(
                "service RSS growth per agent (MB)",
                "load.service_rss_growth_mb_per_agent",
                "baseline.service_rss_growth_mb_per_agent",
                "rss_growth_per_agent_ratio",
            ),
            Row("service peak RSS (MB)", "load.service_rss_peak_mb", "baseline.service_rss_peak_mb"),
            Row("wall until all ended (s)", "load.wall_s", "baseline.wall_s"),
            Row(
                "GET /api/health p99 while 30 agents start and run (ms)",
                "responsive.busy_health_p99_ms",
                "responsive.idle_health_p99_ms",
            ),
            Row(
                "GET /api/agents p99 while 30 agents start and run (ms)",
                "responsive.busy_agents_p99_ms",
                "responsive.idle_agents_p99_ms",
            ),
            Row(
                "30 spawn requests at once, all answered (s)",
                "responsive.spawns_together_s",
                "responsive.one_spawn_s",
            ),
        ),
        quick=("--small", "2", "--large", "5", "--responsive", "5"),
        notes="100 agents at once, beside 10 agents at once (real claude CLI, fake model); responsiveness: "
        "30 agents at once, a prober's p99 beside its p99 on the idle server, the 30 spawns beside one",
    ),
    Bench(
        "bench_instances",
        (
            Row(
                "tasks per second, three instances vs one",
                "three_instances.tasks_per_second",
                "one_instance.tasks_per_second",
                "three_to_one_throughput_ratio",
            ),
            Row("peak agents running, three instances", "three_instances.peak_running", "max_concurrent"),
        ),
        quick=("--tasks", "12", "--max-concurrent", "4"),
        notes="one PostgreSQL (scripts/ci-postgres), the same global max_concurrent for both",
    ),
)


@dataclass
class Outcome:
    bench: Bench
    seconds: float
    results: dict[str, Any] | None = None
    error: str | None = None


def parse_output(stdout: str) -> dict[str, Any]:
    """The benchmark's JSON dict: all of stdout, else the last block starting with `{` at a line start."""
    text = stdout.strip()
    try:
        found = json.loads(text)
    except json.JSONDecodeError:
        start = text.rfind("\n{")
        if start < 0:
            raise
        found = json.loads(text[start + 1 :])
    if not isinstance(found, dict):
        raise ValueError(f"expected a JSON object, got {type(found).__name__}")
    return found


def stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGINT first: the benchmark's cleanup stops its server, which ends its agents; SIGKILL after."""
    for sig, wait in ((signal.SIGINT, 60.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.communicate(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run(bench: Bench, quick: bool, timeout: float) -> Outcome:
    extra = bench.quick if quick else bench.args
    argv = (
        [sys.executable, *extra]
        if extra[:1] == ("-c",)
        else [sys.executable, "-m", f"bench.{bench.name}", *extra]
    )
    started = time.perf_counter()
    print(f"running {bench.name} ...", file=sys.stderr, flush=True)
    # its own process group, so that a timeout also ends the server it started
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        return Outcome(bench, time.perf_counter() - started, error=f"timed out after {timeout:.0f} s")
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        return Outcome(bench, seconds, error=f"exit code {proc.returncode}\n{tail}")
    try:
        return Outcome(bench, seconds, results=parse_output(stdout))
    except ValueError as exc:
        return Outcome(bench, seconds, error=f"unreadable output ({exc}): {stdout[-500:]}")


def lookup(results: dict[str, Any], path: str | None) -> Any:
    if path is None:
        return None
    value: Any = results
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if isinstance(value, int) or magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def flatten(results: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in results.items():
        if isinstance(value, dict):
            rows += flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def table(outcome: Outcome) -> list[str]:
    results = outcome.results or {}
    lines = ["| figure | value | baseline | ratio |", "|---|---:|---:|---:|"]
    for row in outcome.bench.rows:
        figure = lookup(results, row.figure)
        if figure is None:
            continue
        baseline = lookup(results, row.baseline)
        ratio = lookup(results, row.ratio)
        if (
            ratio is None
            and isinstance(figure, int | float)
            and isinstance(baseline, int | float)
            and baseline
        ):
            ratio = figure / baseline
        lines.append(f"| {row.label} | {number(figure)} | {number(baseline)} | {number(ratio)} |")
    return lines


def machine() -> dict[str, str]:
    memory = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.partition(":")[2].strip()
            break
    return {
        "cores (nproc)": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def report(outcomes: list[Outcome], quick: bool) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Benchmark results",
        "",
        f"Measured {now} with `python -m bench.run_all{' --quick' if quick else ''}`;",
        "every baseline was measured in the same run on the same machine. Ratio = figure / baseline.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine().items()),
        "",
    ]
    if quick:
        out += ["**Quick run: small sizes, figures are not comparable to a full run.**", ""]
    for outcome in outcomes:
        out += [f"## {outcome.bench.name}", ""]
        if outcome.bench.notes:
            out += [outcome.bench.notes + f" ({outcome.seconds:.0f} s).", ""]
        if outcome.error is not None:
            out += ["**Failed:**", "", "```", outcome.error, "```", ""]
            continue
        out += [*table(outcome), ""]
        out += ["<details><summary>all figures</summary>", "", "| key | value |", "|---|---:|"]
        out += [f"| {key} | {number(value)} |" for key, value in flatten(outcome.results or {})]
        out += ["", "</details>", ""]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    names = [b.name for b in BENCHES]
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(names)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the run, not the figures")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "RESULTS.md")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
    args = parser.parse_args()
    chosen = BENCHES
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
        chosen = tuple(b for b in BENCHES if b.name in wanted)
    outcomes = [run(bench, args.quick, args.timeout) for bench in chosen]
    args.output.write_text(report(outcomes, args.quick))
    failed = [o.bench.name for o in outcomes if o.error is not None]
    print(f"wrote {args.output}" + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
