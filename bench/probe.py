"""Where a benchmark's time goes inside the service: named functions of the service timed while a bench of
this folder runs (wall clock, each call; p50, mean and count per function). The timers are loaded into
the server process from outside the code (`probe_site/sitecustomize.py` on its PYTHONPATH), so the
service measured is the tree's own, unchanged. Wall time: a function that waits (a thread hop, a lock,
the CPU) counts its wait.

    python -m bench.probe bench_queue:main:30 \\
        --parts orchestrator.agents.spawner:Spawner.spawn,orchestrator.runtimes.host:HostRuntime.start

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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        site, out = Path(tmp) / "site", Path(tmp) / "parts.json"
        shutil.copytree(SITE, site)
        parts = [p for p in args.parts.split(",") if p]
        (site / "probe.json").write_text(json.dumps({"parts": parts, "out": str(out)}))
        # read by bench_server, which hands it to the service it starts
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
        run_here(args.target)
        figures = json.loads(out.read_text()) if out.exists() else {}
    for part in parts:
        got = figures.get(part)
        shown = (
            "no call (or not found: the service's log says)"
            if got is None
            else f"n={got['n']} p50={got['p50_ms']:.3f} ms mean={got['mean_ms']:.3f} ms"
        )
        print(f"{part}: {shown}")


if __name__ == "__main__":
    main()
