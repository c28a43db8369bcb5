"""The TypeScript client (clients/typescript) against the real server: builds the package, starts the
service (with the fake GitHub knowing acme/calc), and runs its `node --test` suite with the server's URL and
token in the environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ServerFactory
from tests.support import fake_anthropic as fm
from tests.support.fake_github import FakeGitHub

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def _run(argv: list[str], timeout: float) -> None:
    done = subprocess.run(argv, cwd=PACKAGE, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"


def build() -> None:
    """`npm ci` when node_modules is missing or older than the lock file, then both tsc builds."""
    npm = shutil.which("npm")
    assert npm, "npm is needed to build the TypeScript client"
    installed = PACKAGE / "node_modules" / ".package-lock.json"
    lock = PACKAGE / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        _run([npm, "ci", "--no-audit", "--no-fund"], timeout=300)
    _run([npm, "run", "--silent", "build"], timeout=120)
    _run([npm, "run", "--silent", "build:test"], timeout=120)


def _steps(fake_model: fm.FakeAnthropic, n: int = 4, delay: float = 0.3) -> str:
    steps = [
        fm.tool("Bash", {"command": f"echo step-{i}", "description": f"step {i}"}, delay=delay)
        for i in range(n)
    ]
    return f"steps {fake_model.scenario([*steps, fm.text('all steps done', delay=delay)])}"


@pytest.mark.xdist_group("typescript")
@pytest.mark.timeout(600)  # a build and a dozen node tests with agents, on a busy machine
def test_typescript_client_suite(
    make_server: ServerFactory, fake_model: fm.FakeAnthropic, github: FakeGitHub, tmp_path: Path
) -> None:
    build()
    server = make_server(
        GITHUB_TOKEN=github.token,
        GITHUB_OWNER="acme",
        GITHUB_API_URL=github.api_url,
        WEBHOOK_ALLOW_HOSTS="127.0.0.1",
    )
    assert server.token
    env = {  # nothing else of the test run's environment
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "ORCHESTRATOR_URL": server.url,
        "ORCHESTRATOR_API_TOKEN": server.token,
        "TS_STEPS_PROMPTS": "\n".join(_steps(fake_model) for _ in range(2)),
    }
    suites = [f".test-build/test/{ts.stem}.js" for ts in sorted((PACKAGE / "test").glob("*.test.ts"))]
    tap = tmp_path / "node-test.tap"
    reporters = ["--test-reporter=spec", "--test-reporter-destination=stdout"]
    reporters += ["--test-reporter=tap", f"--test-reporter-destination={tap}"]
    done = subprocess.run(
        ["node", "--test", "--test-concurrency=1", *reporters, *suites],
        cwd=PACKAGE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, (
        f"node --test failed:\n{done.stdout}\n{done.stderr}\n--- server log:\n{server.log()}"
    )
    summary = dict(re.findall(r"^# (pass|fail|cancelled|skipped|todo) (\d+)$", tap.read_text(), re.M))
    assert summary == {"pass": summary["pass"], "fail": "0", "cancelled": "0", "skipped": "0", "todo": "0"}
    written = sum(
        len(re.findall(r"^test\(", ts.read_text(), re.M)) for ts in (PACKAGE / "test").glob("*.test.ts")
    )
    assert int(summary["pass"]) == written, f"{summary}, {written} tests written"
