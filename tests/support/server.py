"""The real service, started as a subprocess on a loopback port with its own data directory."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from orchestrator.api_token import read_token
from orchestrator.runtimes.procfs import MARKER_VARIABLE
from orchestrator.store.db import driver_url


def free_port() -> int:
    """A free port below the kernel's ephemeral range, so that neither an outgoing connection nor a fake
    server bound to port 0 takes it between this check and the service's own bind."""
    while True:
        port = random.randrange(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


# A service that crashes cuts its agents' model calls (they go through its egress proxy); the CLI retries
# them (its default) and the next service, once it adopted the agent, carries them again. The tests'
# base environment turns retries off so that failures come fast: tests that crash a service turn them on.
RETRYING_CLI = {"CLAUDE_CODE_MAX_RETRIES": "10"}


class Server:
    def __init__(self, data_dir: Path, env: dict[str, str], *, kill_agents_on_shutdown: bool = True) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {**env, "PORT": str(self.port), "ORCHESTRATOR_DATA_DIR": str(data_dir)}
        self.kill_agents_on_shutdown = kill_agents_on_shutdown
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"
        self.token: str | None = self.env.get("ORCHESTRATOR_API_TOKEN") or None
        self.client = httpx.Client(base_url=self.url, timeout=30, headers=self.headers)

    @property
    def headers(self) -> dict[str, str]:
        """What an authorised caller sends: the token set in the environment, else the one the server
        generated in its data directory (known once it has started)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60, *, moves: int = 3) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "orchestrator", "serve"]
        if self.kill_agents_on_shutdown:
            argv.append("--kill-agents-on-shutdown")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.client.get("/api/health", timeout=5).status_code == 200:
                    self.take_token()
                    if moves == 0 or self._answers_with_our_token():
                        return self
                    # another test's server took the port between its check and this one's bind: move
                    self.proc.kill()
                    self.proc.wait()
                    self.port = free_port()
                    self.env["PORT"] = str(self.port)
                    self.client = httpx.Client(base_url=self.url, timeout=30, headers=self.headers)
                    return self.start(timeout, moves=moves - 1)
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.log()}")

    def _answers_with_our_token(self) -> bool:
        """Whether the server on this port is the one this data directory's token opens."""
        return "instance_id" in self.client.get("/api/health", timeout=5).json()

    def take_token(self) -> None:
        """The token the server generated, once it answers (a caller that started it itself calls this)."""
        if self.env.get("ORCHESTRATOR_API_TOKEN"):
            return
        self.token = read_token(self.data_dir)
        assert self.token, f"the server generated no API token in {self.data_dir}"
        self.client.headers.update(self.headers)

    @property
    def database_url(self) -> str:
        return self.env.get("DATABASE_URL") or f"sqlite:///{self.data_dir / 'orchestrator.db'}"

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Reads the server's database directly, SQLite or PostgreSQL."""
        from sqlalchemy import create_engine, text

        from orchestrator.store.db import driver_url

        engine = create_engine(driver_url(self.database_url))
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql))]
        finally:
            engine.dispose()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def crash(self) -> None:
        """SIGKILL: no goodbye, agents keep running."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        self.client.close()
        kill_agents_of(self.data_dir)

    def spawn(self, prompt: str, **body: Any) -> dict[str, Any]:
        response = self.client.post(
            "/api/agents/spawn", json={"agent_type": "coding", "prompt": prompt, **body}
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def agent(self, agent_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/agents/{agent_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def first_agent_of(self, task_id: str, timeout: float = 90) -> str:
        """The id of the task's first agent, once it has one."""
        deadline = time.monotonic() + timeout
        while not (agents := self.client.get(f"/api/tasks/{task_id}").json()["agents"]):
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)
        return str(agents[0]["id"])

    def wait_agent(
        self, agent_id: str, timeout: float = 60, statuses: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        wanted = statuses or ("completed", "failed", "timeout", "killed", "rate_limited")
        deadline = time.monotonic() + timeout
        while True:
            agent = self.agent(agent_id)
            if agent["status"] in wanted:
                return agent
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"agent {agent_id} still {agent['status']} after {timeout} s\n{self.log()}"
                )
            time.sleep(0.05)

    def logs(self, agent_id: str) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.client.get(f"/api/agents/{agent_id}/logs", params={"after": after}).json()
            lines += page["items"]
            after = page["next_after"]
            if not page["has_more"]:
                return lines


def stream_json_lines(logs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for line in logs:
        if line["stream"] == "stdout" and line["content"].startswith("{"):
            yield json.loads(line["content"])


def marked_processes() -> dict[str, list[int]]:
    """Every live process carrying an agent marker, by agent id."""
    found: dict[str, list[int]] = {}
    prefix = f"{MARKER_VARIABLE}=".encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
            state = Path(f"/proc/{name}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        for entry in environ.split(b"\0"):
            if entry.startswith(prefix):
                found.setdefault(entry[len(prefix) :].decode(), []).append(int(name))
    return found


def agent_pids(agent_id: str) -> list[int]:
    return marked_processes().get(agent_id, [])


def kill_agents_of(data_dir: Path) -> None:
    """Leaves no agent process behind a test, whatever it did to its server."""
    runs = data_dir / "runs"
    if not runs.is_dir():
        return
    for run in runs.iterdir():
        for pid in agent_pids(run.name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def write_db(server: Server, *statements: str) -> None:
    """Writes a stopped server's database directly: what a crash at a chosen moment leaves behind."""
    engine = create_engine(driver_url(server.database_url))
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()
