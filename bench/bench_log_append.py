"""The CPU of one log append (one line and its offsets, one transaction: what the service does for each
line an agent prints while agents run), as `LogStore.append` does it on SQLite (the statements on the
driver's connection, store/log_writes.py), beside the same append through SQLAlchemy Core
(`CoreWrites`, what PostgreSQL gets and SQLite got before), on one SQLite file in the same run, in turns.

    .venv/bin/python -m bench.bench_log_append [--appends N] [--rounds R]

Also: the CPU of making a directory and a file in a fresh folder under each of the given directories
(`--dirs`, default /tmp and /var/tmp), which on this machine's disk differs by place (WHERE-THE-TIME-GOES).
Prints one JSON dict."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.store import log_writes
from orchestrator.store.agents import AgentStore
from orchestrator.store.db import Database
from orchestrator.store.logs import LogStore, NewLine, Progress

AGENT = "coding-0001"


def _store(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    db.migrate()
    AgentStore(db).insert(
        {
            "id": AGENT,
            "status": "running",
            "agent_type": "coding",
            "prompt": "p",
            "instance_id": "me",
            "timeout_seconds": 60,
            "max_turns": 5,
            "runtime": "host",
        }
    )
    return db


def _cpu_per_append(append: Callable[[int], object], n: int) -> float:
    start = time.thread_time()
    for i in range(n):
        append(i)
    return (time.thread_time() - start) / n


def log_append(appends: int = 2000, rounds: int = 3) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orch-bench-append-") as tmp:
        db = _store(Path(tmp) / "a.db")
        store = LogStore(db)

        def driver(i: int) -> object:
            line = NewLine(AGENT, "2026-12-04T00:00:00.000Z", "stdout", f"line {i} " * 10)
            return store.append([line], [Progress(AGENT, i * 80, 0, 1)], "me")

        def core(i: int) -> object:  # the same append, every statement through SQLAlchemy Core
            line = NewLine(AGENT, "2026-12-04T00:00:00.000Z", "stdout", f"line {i} " * 10)
            with db.write() as conn:
                writes = log_writes.CoreWrites(conn)
                owned = writes.owned([AGENT], "me")
                assert owned == {AGENT}
                ids = writes.insert([line])
                writes.progress([Progress(AGENT, i * 80, 0, 1)])
            return ids

        _cpu_per_append(driver, 200)
        _cpu_per_append(core, 200)
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(_cpu_per_append(driver, appends))
            theirs.append(_cpu_per_append(core, appends))
        db.dispose()
    append_us = statistics.median(ours) * 1e6
    core_us = statistics.median(theirs) * 1e6
    return {
        "append_cpu_us": append_us,
        "core_append_cpu_us": core_us,
        "ratio_to_core": append_us / core_us,
        "appends": appends,
        "rounds": rounds,
    }


def file_making(dirs: list[str], n: int = 300) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for parent in dirs:
        folder = tempfile.mkdtemp(dir=parent, prefix="orch-bench-files-")
        try:
            start = time.thread_time()
            for i in range(n):
                os.mkdir(f"{folder}/d{i}")
            made_dir = (time.thread_time() - start) / n
            start = time.thread_time()
            for i in range(n):
                os.close(os.open(f"{folder}/f{i}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
            made_file = (time.thread_time() - start) / n
        finally:
            shutil.rmtree(folder)
        out[parent] = {"mkdir_cpu_us": made_dir * 1e6, "create_cpu_us": made_file * 1e6}
    return out


DIRS = ("/tmp", "/var/tmp")


def main(appends: int = 2000, rounds: int = 3, dirs: tuple[str, ...] = DIRS) -> dict[str, Any]:
    results = {"log_append": log_append(appends, rounds), "file_making": file_making(list(dirs))}
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dirs", nargs="+", default=list(DIRS))
    args = parser.parse_args()
    main(args.appends, args.rounds, tuple(args.dirs))
