"""Where a benchmark's time goes inside the service: named functions of the service timed while a bench of
this folder runs (wall clock, each call; p50, mean and count per function). The timers are loaded into
the server process from outside the code (`probe_site/sitecustomize.py` on its PYTHONPATH), so the
service measured is the tree's own, unchanged. Wall time: a function that waits (a thread hop, a lock,
the CPU) counts its wait.

    python -m bench.probe bench_queue:main:30 \\
        --parts orchestrator.agents.spawner:Spawner.spawn,orchestrator.runtimes.host:HostRuntime.start

With `--cpu`, functions that are not coroutines are timed by their thread's CPU clock, and the event
loop's CPU is listed by what it ran (each task under its coroutine's name), total and count:

    python -m bench.probe bench_load:measure:100 --cpu \\
        --parts orchestrator.store.logs:LogStore.append,orchestrator.agents.blanks:Blanks._fill

WHERE-THE-TIME-GOES.md's "probe" figures were taken this way."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from bench.ab import run_here

SITE = Path(__file__).resolve().parent / "probe_site"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("target", help="module:function[:integer argument] of bench/: bench_queue:main:30")
    parser.add_argument("--parts", required=True, help="comma-separated module:Class.function to time")
    parser.add_argument(
        "--cpu", action="store_true", help="CPU time of the calling thread, and the event loop's by task"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        site, out = Path(tmp) / "site", Path(tmp) / "parts.json"
        shutil.copytree(SITE, site)
        parts = [p for p in args.parts.split(",") if p]
        (site / "probe.json").write_text(json.dumps({"parts": parts, "out": str(out), "cpu": args.cpu}))
        # read by bench_server, which hands it to the service it starts
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
        run_here(args.target)
        figures = json.loads(out.read_text()) if out.exists() else {}
    loop = sorted(
        ((name, got) for name, got in figures.items() if name.startswith("loop ")),
        key=lambda item: -item[1]["total_ms"],
    )
    for name, got in loop[:25]:
        print(f"{name}: {got['total_ms']:.1f} ms in {got['n']} runs")
    for part in parts:
        got = figures.get(part)
        shown = (
            "no call (or not found: the service's log says)"
            if got is None
            else f"n={got['n']} p50={got['p50_ms']:.3f} ms mean={got['mean_ms']:.3f} ms"
            f" total={got['total_ms']:.1f} ms"
        )
        print(f"{part}: {shown}")


if __name__ == "__main__":
    main()
