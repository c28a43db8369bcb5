"""Runtime figures, each beside a baseline measured in the same run: per runtime (host, host+bwrap,
host+bwrap+egress, docker) the time from spawn to the agent's first output line and the time to kill it,
for a shell agent (the runtime's own cost) and for the real `claude` CLI against the fake model (its
first stream-json line); beside `Popen('/bin/true')`, a bare `bwrap ... echo`, a bare `docker run` of the
same image, and for the egress relay the same sandbox without it.

    .venv/bin/python -m bench.bench_runtimes [--runs N] [--claude-runs N]

Prints one JSON dict (milliseconds, medians over the runs) and writes no file. The docker rows need a
running engine and the image AGENT_TEST_IMAGE (default orchestrator-agent:test, see scripts/ci-docker).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.agents.command import ClaudeInvocation, build_argv, build_env
from orchestrator.domain.egress import EgressPolicy
from orchestrator.domain.types import LogStream
from orchestrator.runtimes.base import Limits, RunHandle, RunSpec, Runtime
from orchestrator.runtimes.docker import DockerRuntime
from orchestrator.runtimes.egress import Egress
from orchestrator.runtimes.host import HostRuntime
from orchestrator.runtimes.ownership import agent_user
from orchestrator.runtimes.sandbox import Bwrap
from orchestrator.settings import installed_claude
from tests.support import fake_anthropic as fm

IMAGE = os.environ.get("AGENT_TEST_IMAGE", "orchestrator-agent:test")
SHELL_AGENT = ["/bin/sh", "-c", "echo first; exec sleep 300"]


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1) if values else float("nan")


def _first_line(handle: RunHandle, started: float, timeout: float = 60) -> float:
    while time.perf_counter() - started < timeout:
        if b"\n" in handle.read(LogStream.STDOUT, 0, 65536):
            return time.perf_counter() - started
        time.sleep(0.0005)
    raise TimeoutError("no output line")


async def _until_ended(handle: RunHandle, timeout: float = 30) -> None:
    deadline = time.perf_counter() + timeout
    while not handle.poll()[0]:
        if time.perf_counter() > deadline:
            raise TimeoutError("did not end")
        await asyncio.sleep(0.001)


async def _measure(
    runtime: Runtime, make_spec: Callable[[Path, str], RunSpec], runs: int
) -> dict[str, float]:
    first, kill = [], []
    with tempfile.TemporaryDirectory(prefix="orch-bench-rt-") as tmp:
        for i in range(runs + 1):  # the first run warms up (client, page cache) and is not counted
            spec = make_spec(Path(tmp), f"bench-{os.getpid()}-{i}-{time.monotonic_ns() % 10**8}")
            started = time.perf_counter()
            handle = await runtime.start(spec)
            first.append(await asyncio.to_thread(_first_line, handle, started))
            started = time.perf_counter()
            handle.kill()
            await _until_ended(handle)
            kill.append(time.perf_counter() - started)
            await asyncio.to_thread(handle.sweep)
            handle.close()
    first, kill = first[1:], kill[1:]
    return {"first_line_ms": _ms(first), "kill_ms": _ms(kill), "runs": runs}


def _shell_spec(tmp: Path, agent_id: str) -> RunSpec:
    run_dir = tmp / "runs" / agent_id
    ws = tmp / "ws" / agent_id
    for d in (run_dir / "home", ws):
        d.mkdir(parents=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(run_dir / "home"), "ORCHESTRATOR_AGENT_ID": agent_id}
    return RunSpec(agent_id, SHELL_AGENT, env, ws, run_dir, Limits(60), {"agent_id": agent_id})


def _claude_spec(fake: fm.FakeAnthropic, marker: str) -> Callable[[Path, str], RunSpec]:
    def make(tmp: Path, agent_id: str) -> RunSpec:
        spec = _shell_spec(tmp, agent_id)
        (spec.run_dir / "claude-config").mkdir()
        argv = build_argv(ClaudeInvocation(str(installed_claude()), max_turns=3))
        parent = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ANTHROPIC_BASE_URL": fake.base_url,
            "ANTHROPIC_API_KEY": "bench-dummy",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        }
        env = build_env(
            parent,
            agent_id=agent_id,
            home=spec.run_dir / "home",
            config_dir=spec.run_dir / "claude-config",
            running_as_root=os.geteuid() == 0,
        )
        return RunSpec(
            agent_id, argv, env, spec.cwd, spec.run_dir, spec.limits, spec.labels, prompt=f"hi {marker}"
        )

    return make


def baseline_true(n: int = 100) -> float:
    started = time.perf_counter()
    for _ in range(n):
        subprocess.Popen(["/bin/true"]).wait()
    return round((time.perf_counter() - started) / n * 1000, 2)


def _popen_first_line(argv: list[str]) -> tuple[float, subprocess.Popen[bytes]]:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    proc.stdout.readline()
    return time.perf_counter() - started, proc


def baseline_bwrap(runs: int) -> dict[str, float]:
    bwrap = shutil.which("bwrap") or "/usr/bin/bwrap"
    argv = [bwrap, "--unshare-pid", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev"]
    argv += ["--proc", "/proc", "--tmpfs", "/tmp", "/bin/sh", "-c", "echo first"]
    values = []
    for _ in range(runs + 1):
        took, proc = _popen_first_line(argv)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        values.append(took)
    return {"first_line_ms": _ms(values[1:]), "runs": runs}


def baseline_docker_run(runs: int) -> dict[str, float]:
    """`docker run` of the same image: first line of `echo`, and `docker kill` of a sleeping one."""
    docker = shutil.which("docker") or "docker"
    first, kill = [], []
    for i in range(runs + 1):
        name = f"orch-bench-{os.getpid()}-{i}"
        took, proc = _popen_first_line(
            [
                docker,
                "run",
                "--rm",
                "--name",
                name,
                "--network",
                "host",
                IMAGE,
                "sh",
                "-c",
                "echo first; exec sleep 300",
            ]
        )
        first.append(took)
        started = time.perf_counter()
        subprocess.run([docker, "kill", name], capture_output=True, check=True)
        proc.wait()
        kill.append(time.perf_counter() - started)
        assert proc.stdout is not None
        proc.stdout.close()
    return {"first_line_ms": _ms(first[1:]), "kill_ms": _ms(kill[1:]), "runs": runs}


# the service's own choice when AGENT_CONTAINER_USER is unset
_USER = agent_user(None, os.geteuid(), os.getegid())


def _docker_problem() -> str | None:
    return DockerRuntime(image=IMAGE, user=_USER).check()


async def main(runs: int, claude_runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"baseline_popen_true_ms": baseline_true()}
    fake = fm.FakeAnthropic()
    fake.start()
    try:
        with tempfile.TemporaryDirectory(prefix="orch-bench-egress-") as sockets:
            egress = Egress(EgressPolicy.from_settings(fake.base_url, ""), Path(sockets))
            marker = fake.scenario([fm.text("hello")], repeat_last=True)
            for name, (shell_runtime, claude_runtime) in _runtimes(out, runs, egress).items():
                out[name] = {
                    "shell_agent": await _measure(shell_runtime, _shell_spec, runs),
                    "claude_agent": await _measure(claude_runtime, _claude_spec(fake, marker), claude_runs),
                }
    finally:
        fake.stop()
    return out


def _runtimes(out: dict[str, Any], runs: int, egress: Egress) -> dict[str, tuple[Runtime, Runtime]]:
    """Per runtime, the one for a shell agent and the one for the claude CLI (docker swaps argv[0] for the
    CLI's path inside the image, which must not happen to the shell agent's /bin/sh); the baselines of
    those that can run here go into `out`, and why the others cannot."""
    runtimes: dict[str, tuple[Runtime, Runtime]] = {"host": (HostRuntime(), HostRuntime())}
    bwrap = Bwrap()
    if bwrap.problem is None:
        runtimes["host+bwrap"] = (HostRuntime(sandbox=bwrap), HostRuntime(sandbox=bwrap))
        out["baseline_bare_bwrap"] = baseline_bwrap(runs)
        # as the service runs agents by default: in a network namespace, the model API and the proxy
        # reached through the relay (two socat listeners, started before the agent's command)
        if egress.problem(bwrap.path) is None:
            runtimes["host+bwrap+egress"] = (
                HostRuntime(sandbox=bwrap, egress=egress),
                HostRuntime(sandbox=bwrap, egress=egress),
            )
    else:
        out["host+bwrap"] = {"skipped": bwrap.problem}
    docker_problem = _docker_problem()
    if docker_problem is None:
        runtimes["docker"] = (
            DockerRuntime(image=IMAGE, user=_USER),
            DockerRuntime(image=IMAGE, user=_USER, claude_bin="claude"),
        )
        out["baseline_bare_docker_run"] = baseline_docker_run(runs)
    else:
        out["docker"] = {"skipped": docker_problem}
    return runtimes


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--claude-runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.runs, args.claude_runs)), indent=2))
