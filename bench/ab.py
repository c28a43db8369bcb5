"""A change measured against the code before it: a git revision and the working tree take turns at one
benchmark, because this machine's speed drifts by 20% within minutes (two `run_all` runs hours apart
cannot tell a 10% change from the drift). The revision is checked out into a temporary worktree, and
each turn is a fresh process whose service runs from that tree (`PYTHONPATH`, see `bench_server`).

    python -m bench.ab HEAD~1 bench_load:measure:100 --rounds 2 --keys service_cpu_s_per_agent
    python -m bench.ab HEAD~1 bench_queue:main --keys agent_gap_p50_ms,item_gap_p50_ms

Prints one line a turn, then each key's figures side by side."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent


def _figure(results: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        results = results[part]
    return results


def _turn(tree: Path, target: str) -> dict[str, Any]:
    """One run of `module:function[:argument]` with the service and the bench from `tree`."""
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree}"}
    # this file by its path: the revision measured may not have it
    done = subprocess.run(
        [sys.executable, __file__, "--turn", target],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{target} failed in {tree}:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_here(target: str) -> None:
    module, _, rest = target.partition(":")
    function, _, argument = rest.partition(":")
    run = getattr(importlib.import_module(f"bench.{module}"), function or "main")
    results = run(int(argument)) if argument else run()
    print(json.dumps(results, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("revision", nargs="?", help="the code before the change (any git revision)")
    parser.add_argument("target", help="module:function[:integer argument] of bench/: bench_load:measure:100")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keys", default="", help="comma-separated figures to compare (dotted for nested)")
    parser.add_argument("--turn", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.turn:
        run_here(args.target)
        return
    if args.revision is None:
        parser.error("a revision to compare with is needed")
    keys = [k for k in args.keys.split(",") if k]
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        old = Path(tmp) / "before"
        git = ["git", "-C", str(HERE), "worktree"]
        subprocess.run([*git, "add", "-q", "--detach", str(old), args.revision], check=True)
        try:
            figures: dict[str, dict[str, list[Any]]] = {"before": {}, "after": {}}
            for round_ in range(1, args.rounds + 1):
                for name, tree in (("before", old), ("after", HERE)):
                    results = _turn(tree, args.target)
                    shown = {k: _figure(results, k) for k in keys} if keys else results
                    for key, value in shown.items():
                        figures[name].setdefault(key, []).append(value)
                    print(f"round {round_} {name}: {json.dumps(shown, default=str)}", flush=True)
        finally:
            subprocess.run([*git, "remove", "--force", str(old)], check=False)
    for key in figures["after"]:
        print(f"{key}: before {figures['before'].get(key)}, after {figures['after'][key]}")


if __name__ == "__main__":
    main()
