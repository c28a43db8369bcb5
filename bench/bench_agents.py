"""Agent manager figures, each beside a baseline measured in the same run: spawn requests in a row, p50
and mean, each timed on its own, and one at a time (beside Popen of /bin/true), log lines stored per
second (beside raw batched SQLite inserts), SSE delay from a line's print to the client (p50/p99)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import bench_server, percentile, summary_ms
from tests.support import fake_anthropic as fm
from tests.support.sse import events


def baseline_true_spawn(n: int = 200) -> float:
    start = time.perf_counter()
    for _ in range(n):
        subprocess.Popen(["/bin/true"]).wait()
    return (time.perf_counter() - start) / n


ALONE_PAUSE_SECONDS = 0.15
_RESULT_ONLY = '#!/bin/sh\necho \'{"type":"result","subtype":"success","is_error":false,"result":"ok"}\'\n'


def _spawn_times(n: int, real_claude: bool, *, one_at_a_time: bool = False) -> tuple[list[float], float]:
    """(seconds each spawn request took, seconds until all ended) for n spawns in a row; or one at a time,
    each once the agent before has ended and its sandbox gone (in a row, the spawns share the cores with
    the earlier agents' sandboxes as they start and end)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {}
        if not real_claude:
            script = Path(tmp) / "claude"
            script.write_text(_RESULT_ONLY)
            script.chmod(0o755)
            env["CLAUDE_BIN"] = str(script)
        with bench_server(**env) as (server, fake):
            marker = fake.scenario([fm.text("ok")])
            ids, took = [], []
            start = time.perf_counter()
            for _ in range(n):
                sent = time.perf_counter()
                ids.append(server.spawn(f"bench {marker}")["id"])
                took.append(time.perf_counter() - sent)
                if one_at_a_time:
                    assert server.wait_agent(ids[-1], timeout=60)["status"] == "completed"
                    time.sleep(ALONE_PAUSE_SECONDS)
            for agent_id in ids:
                assert server.wait_agent(agent_id, timeout=300)["status"] == "completed"
            return took, time.perf_counter() - start


def spawns_per_second(n: int = 50, alone: int = 30) -> dict[str, Any]:
    own, own_all = _spawn_times(n, real_claude=False)
    by_itself, _ = _spawn_times(alone, real_claude=False, one_at_a_time=True)
    real, real_all = _spawn_times(20, real_claude=True)
    base = baseline_true_spawn()
    p50 = percentile(own, 50)
    return {
        "spawns_per_second": n / sum(own),
        "spawn_p50_ms": p50 * 1000,
        "spawn_alone_p50_ms": percentile(by_itself, 50) * 1000,
        "spawn_alone_n": alone,
        "spawn_mean_ms": sum(own) / n * 1000,
        "true_spawn_ms": base * 1000,
        "ratio_to_true": p50 / base,
        "n": n,
        "all_ended_seconds": own_all,
        "real_claude_spawn_p50_ms": percentile(real, 50) * 1000,
        "real_claude_20_all_completed_seconds": real_all,
    }


def raw_sqlite_rows_per_second(n: int = 200_000) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE agent_logs "
            "(id INTEGER PRIMARY KEY, agent_id TEXT, timestamp TEXT, stream TEXT, content TEXT)"
        )
        conn.execute("CREATE INDEX ix ON agent_logs (agent_id, id)")
        rows = [("coding-00000000", "2026-01-01T00:00:00.000Z", "stdout", str(i)) for i in range(n)]
        start = time.perf_counter()
        for i in range(0, n, 1000):
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO agent_logs (agent_id, timestamp, stream, content) VALUES (?,?,?,?)",
                rows[i : i + 1000],
            )
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
    return n / elapsed


def lines_per_second(n: int = 200_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "claude"
        script.write_text(
            f"#!/bin/sh\nseq 1 {n}\n"
            'echo \'{"type":"result","subtype":"success","is_error":false,"result":"ok"}\'\n'
        )
        script.chmod(0o755)
        with bench_server(CLAUDE_BIN=str(script)) as (server, _fake):
            start = time.perf_counter()
            agent = server.spawn("print")
            done = server.wait_agent(agent["id"], timeout=600)
            elapsed = time.perf_counter() - start
            assert done["log_lines"] == n + 1, done
    rate = (n + 1) / elapsed
    raw = raw_sqlite_rows_per_second()
    return {"lines_per_second": rate, "raw_sqlite_rows_per_second": raw, "ratio_to_raw": rate / raw, "n": n}


# a shell script: the host sandbox binds the system's directories, not this interpreter's virtualenv
_PRINTER = """#!/bin/sh
i=0
while [ $i -lt {n} ]; do
    printf '{{"type": "bench", "t": %s, "i": %d}}\\n' "$(date +%s.%N)" "$i"
    sleep {gap}
    i=$((i + 1))
done
echo '{{"type": "result", "is_error": false, "result": "ok"}}'
"""


def sse_delay(n: int = 400, gap: float = 0.01) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "claude"
        script.write_text(_PRINTER.format(n=n, gap=gap))
        script.chmod(0o755)
        with bench_server(CLAUDE_BIN=str(script)) as (server, _fake):
            agent = server.spawn("print")
            delays: list[float] = []
            with server.client.stream(
                "GET", f"/api/agents/{agent['id']}/logs", headers={"Accept": "text/event-stream"}, timeout=120
            ) as response:
                for event in events(response):
                    now = time.time()
                    if event.event == "end":
                        break
                    content = event.data["content"]
                    if content.startswith('{"type": "bench"'):
                        delays.append(now - json.loads(content)["t"])
    live = delays[20:]
    return {
        "p50_ms": percentile(live, 50) * 1000,
        "p99_ms": percentile(live, 99) * 1000,
        "summary": summary_ms(live),
        "n": len(live),
    }


def main() -> dict[str, Any]:
    results = {"spawn": spawns_per_second(), "log_lines": lines_per_second(), "sse": sse_delay()}
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
