"""The "peers" workload of perf-baselines.md: 10 tasks at concurrency 3, the real `claude` against a
fake model that takes 1 s per reply. Through the service (10 tasks queued, max_concurrent=3), beside
`xargs -P3` of the same plain CLI runs (same argv, same environment, a fresh HOME each, like the
service's agents) measured in the same run. The two take turns, twice; each figure is the median of its
rounds.

Figures: wall time; overhead per task = (wall - ideal) / tasks, ideal = ceil(tasks / 3) x one CLI run
alone (measured here); the service's own CPU seconds while the tasks run (utime + stime of the server
process from /proc, start-up excluded, agents not counted); the service's peak RSS during the run; the
CLI's mean run, two ways: its process's start to its end (under xargs the runner's clock around the
command; under the service the agent's `started_at` to `completed_at`, so the sandbox's start and the
end's handling count against the service), and the CLI's own `duration_ms` from its result line.

The service's wall time ends at its last item's `completed_at` (the server's clock, the same host clock).
The bench waits for the runs to end by watching their exit-code files, and asks GET /api/queue only
after that: its own polls would otherwise count in the service's CPU figure."""

from __future__ import annotations

import json
import math
import os
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    RssPeak,
    bench_server,
    claude_bin,
    cpu_seconds,
    server_pid,
    wait_drained,
    wait_exited,
)
from orchestrator.agents.command import ClaudeInvocation, build_argv, build_env
from orchestrator.clock import parse_iso
from tests.support import fake_anthropic as fm

TASKS = 10
CONCURRENCY = 3
REPLY_SECONDS = 1.0
DRAINED_POLL_SECONDS = 0.05
ROUNDS = 2
PROMPT = "Say done. {marker}"


def _cli_runner(tmp: Path, fake: fm.FakeAnthropic, marker: str) -> Path:
    """A script that makes one plain CLI run in a fresh folder with a fresh HOME; argv $1 is its number."""
    argv = [
        *build_argv(ClaudeInvocation(claude_bin=claude_bin(), max_turns=50)),
        "--",
        PROMPT.format(marker=marker),
    ]
    parent = {
        **os.environ,
        "ANTHROPIC_BASE_URL": fake.base_url,
        "ANTHROPIC_API_KEY": "bench-dummy",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }
    env = build_env(
        parent,
        agent_id="xargs",
        home=Path("/nonexistent"),
        config_dir=Path("/nonexistent"),
        running_as_root=os.geteuid() == 0,
    )
    env.pop("HOME")
    env.pop("CLAUDE_CONFIG_DIR")
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
    script = tmp / "run_one.sh"
    script.write_text(  # bash for $EPOCHREALTIME: the run's start and end without a process to read them
        "#!/bin/bash\n"
        f'd={shlex.quote(str(tmp))}/run-$1-$$; mkdir -p "$d/home" "$d/config" "$d/work"; cd "$d/work"\n'
        "started=$EPOCHREALTIME\n"
        f'env -i {exports} HOME="$d/home" CLAUDE_CONFIG_DIR="$d/config" '
        f'{shlex.join(argv)} < /dev/null > "$d/out" 2>&1\n'
        'code=$?; echo "$started $EPOCHREALTIME" > "$d/times"; exit $code\n'
    )
    script.chmod(0o755)
    return script


def _xargs(tmp: Path, fake: fm.FakeAnthropic) -> dict[str, float]:
    marker = fake.scenario([fm.text("done", delay=REPLY_SECONDS)], repeat_last=True)
    runner = _cli_runner(tmp, fake, marker)
    subprocess.run([str(runner), "warmup"], check=True)
    start = time.perf_counter()
    subprocess.run([str(runner), "alone"], check=True)
    alone = time.perf_counter() - start
    start = time.perf_counter()
    xargs = subprocess.Popen(
        ["xargs", "-P", str(CONCURRENCY), "-n", "1", str(runner)], stdin=subprocess.PIPE, text=True
    )
    xargs.communicate("\n".join(str(i) for i in range(TASKS)) + "\n")
    wall = time.perf_counter() - start
    assert xargs.returncode == 0
    outputs = list(tmp.glob("run-*/out"))
    assert sum('"subtype":"success"' in p.read_text() for p in outputs) == TASKS + 2, "a CLI run failed"
    runs = [run for i in range(TASKS) for run in tmp.glob(f"run-{i}-*")]
    spans = [[float(t) for t in (run / "times").read_text().split()] for run in runs]
    return {
        "alone": alone,
        "wall": wall,
        "cli_run": statistics.mean(end - begin for begin, end in spans),
        "cli_said": statistics.mean(_said_duration((run / "out").read_text()) for run in runs),
    }


def _said_duration(output: str) -> float:
    """The CLI's own `duration_ms` of its run (its result line), in seconds."""
    for line in reversed(output.splitlines()):
        if '"type":"result"' in line:
            return float(json.loads(line)["duration_ms"]) / 1000
    raise AssertionError(f"no result line in {output[-500:]!r}")


def _service() -> dict[str, float]:
    with bench_server() as (server, fake):
        marker = fake.scenario([fm.text("done", delay=REPLY_SECONDS)], repeat_last=True)
        client = server.client
        for key, value in (("paused", True), ("max_concurrent", CONCURRENCY), ("stop_on_failure", False)):
            assert client.post("/api/queue/settings", json={"key": key, "value": value}).status_code == 200
        for i in range(TASKS):
            body = {"id": f"peer-{i}", "title": f"peer task {i}", "description": PROMPT.format(marker=marker)}
            assert client.post("/api/tasks", json=body).status_code == 201
            assert client.post(f"/api/queue/add/peer-{i}").status_code == 201
        pid = server_pid(server)
        time.sleep(0.5)
        cpu_before = cpu_seconds(pid)
        with RssPeak(pid) as rss:
            start = time.time()
            assert (
                client.post("/api/queue/settings", json={"key": "paused", "value": False}).status_code == 200
            )
            wait_exited(server, TASKS, 300)
            status = wait_drained(client, 60, DRAINED_POLL_SECONDS)
        wall = max(parse_iso(i["completed_at"]).timestamp() for i in status["completed"]) - start
        cpu = cpu_seconds(pid) - cpu_before
        failed = [i for i in status["completed"] if i["status"] != "completed"]
        assert not failed, failed
        agents = client.get("/api/agents", params={"limit": TASKS * 2}).json()["items"]
        assert len(agents) == TASKS, agents
    return {
        "wall": wall,
        "cpu": cpu,
        "rss_peak_mb": rss.peak,
        # the service's view of a run: its process started to its end recorded
        "cli_run": statistics.mean(
            (parse_iso(a["completed_at"]) - parse_iso(a["started_at"])).total_seconds() for a in agents
        ),
        "cli_said": statistics.mean(a["duration_ms"] / 1000 for a in agents),
    }


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main(rounds: int = ROUNDS) -> dict[str, Any]:
    floors, services = [], []
    for _ in range(rounds):  # in turns: a machine that slows down for a while weighs on both alike
        with fm.FakeAnthropic() as fake, tempfile.TemporaryDirectory(prefix="orch-peers-") as tmp:
            floors.append(_xargs(Path(tmp), fake))
        services.append(_service())
    floor = {key: _median(floors, key) for key in ("alone", "wall", "cli_run", "cli_said")}
    service = {key: _median(services, key) for key in ("wall", "cpu", "rss_peak_mb", "cli_run", "cli_said")}
    ideal = math.ceil(TASKS / CONCURRENCY) * floor["alone"]
    results = {
        "one_cli_run_s": floor["alone"],
        "ideal_s": ideal,
        "xargs_wall_s": floor["wall"],
        "xargs_overhead_per_task_s": (floor["wall"] - ideal) / TASKS,
        "service_wall_s": service["wall"],
        "service_overhead_per_task_s": (service["wall"] - ideal) / TASKS,
        "service_minus_xargs_per_task_s": (service["wall"] - floor["wall"]) / TASKS,
        "service_cpu_s": service["cpu"],
        "service_rss_peak_mb": service["rss_peak_mb"],
        "wall_ratio_to_xargs": service["wall"] / floor["wall"],
        "xargs_cli_run_s": floor["cli_run"],
        "service_cli_run_s": service["cli_run"],
        "cli_run_ratio_to_xargs": service["cli_run"] / floor["cli_run"],
        "xargs_cli_said_s": floor["cli_said"],
        "service_cli_said_s": service["cli_said"],
        "cli_said_ratio_to_xargs": service["cli_said"] / floor["cli_said"],
        "tasks": TASKS,
        "concurrency": CONCURRENCY,
        "rounds": rounds,
    }
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
