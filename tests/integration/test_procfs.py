"""Finding an agent's processes by the marker in their environment: a whole entry, wherever it stands."""

from __future__ import annotations

import subprocess

from orchestrator.runtimes.procfs import MARKER_VARIABLE, kill_marked, marked_pids


def _sleeper(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["/bin/sleep", "30"], env=env)


def test_the_marker_is_found_first_last_or_alone_and_a_longer_id_is_not_it() -> None:
    agent = "coding-procfs01"
    procs = {
        "first": _sleeper({MARKER_VARIABLE: agent, "PATH": "/usr/bin:/bin"}),
        "last": _sleeper({"PATH": "/usr/bin:/bin", MARKER_VARIABLE: agent}),
        "alone": _sleeper({MARKER_VARIABLE: agent}),
        "longer": _sleeper({MARKER_VARIABLE: agent + "x"}),
        "in a value": _sleeper({"X": f"{MARKER_VARIABLE}={agent}"}),
    }
    try:
        found = set(marked_pids(agent))
        assert {name for name, p in procs.items() if p.pid in found} == {"first", "last", "alone"}
        assert kill_marked(agent) >= 3
        for name in ("first", "last", "alone"):
            assert procs[name].wait(10) == -9
        assert procs["longer"].poll() is None
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
