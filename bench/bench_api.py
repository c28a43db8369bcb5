"""API requests per second of GET /api/health and GET /api/agents (a page of 50 agents), beside a bare
ASGI app answering a constant JSON on uvicorn with the same defaults, measured in the same run.

The load comes from a small asyncio HTTP/1.1 keep-alive client in this process (C connections, each
sending its next request when the answer is read), so client and server share the 2 cores: the
ratios mean more than the absolute numbers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import bench_server, percentile, tiny_claude
from tests.support.server import free_port

CONNECTIONS = 32
SECONDS = 3.0
WARMUP = 0.5


async def _worker(
    host: str, port: int, path: str, headers: dict[str, str], until: float, latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            latencies.append(time.perf_counter() - start)
    finally:
        writer.close()
        await writer.wait_closed()


async def _load(host: str, port: int, path: str, headers: dict[str, str], seconds: float) -> list[float]:
    latencies: list[float] = []
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_worker(host, port, path, headers, until, latencies) for _ in range(CONNECTIONS)))
    return latencies


def measure(url: str, path: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    asyncio.run(_load(host, int(port), path, headers or {}, WARMUP))
    start = time.perf_counter()
    latencies = asyncio.run(_load(host, int(port), path, headers or {}, SECONDS))
    elapsed = time.perf_counter() - start
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


@contextmanager
def bare_asgi() -> Iterator[str]:
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "bench.bare_asgi:app", "--port", str(port)),
            *("--log-level", "warning", "--no-access-log"),
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    return max(runs, key=lambda r: r["rps"])


def main(rounds: int = 2) -> dict[str, Any]:
    """Rounds interleave the three targets; each keeps its best round (the machine is shared)."""
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "health": [], "agents": []}
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_server(CLAUDE_BIN=tiny_claude(Path(tmp))) as (server, _),
        bare_asgi() as bare_url,
    ):
        ids = [server.spawn(f"agent {i}")["id"] for i in range(50)]
        for agent_id in ids:
            server.wait_agent(agent_id)
        for _ in range(rounds):
            runs["bare"].append(measure(bare_url, "/"))
            runs["health"].append(measure(server.url, "/api/health"))
            runs["agents"].append(measure(server.url, "/api/agents", server.headers))
    bare, health, agents = _best(runs["bare"]), _best(runs["health"]), _best(runs["agents"])
    results = {
        "bare_asgi": bare,
        "health": health,
        "agents": agents,
        "health_ratio": health["rps"] / bare["rps"],
        "agents_ratio": agents["rps"] / bare["rps"],
        "connections": CONNECTIONS,
        "seconds": SECONDS,
        "rounds": rounds,
    }
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
