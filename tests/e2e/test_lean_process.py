"""The service's process carries only what it runs: no migration tool (a child process migrates), no
command-line libraries. Python itself reports every module the server imports (PYTHONPROFILEIMPORTTIME
writes one line per import to the server's stderr, which the harness keeps in server.log)."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from orchestrator.store.db import HEAD_REVISION
from tests.conftest import ServerFactory
from tests.support import fake_anthropic as fm

# click stays: uvicorn's package imports its own command line (uvicorn.main) with the server
NOT_IN_THE_SERVICE = {"alembic", "mako", "typer", "rich", "pygments"}
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)\s*$", re.M)


def imported_modules(log: str) -> set[str]:
    """Modules the process imported, from its own import-time lines (a child's, such as the migration
    process's, reach the log inside the service's log lines, never at a line's start)."""
    return set(IMPORT_LINE.findall(log))


def test_the_running_service_never_imported_alembic_or_the_cli_libraries(
    make_server: ServerFactory, fake_model: fm.FakeAnthropic
) -> None:
    server = make_server(PYTHONPROFILEIMPORTTIME="1")
    marker = fake_model.scenario([fm.text("Done.")])
    agent = server.wait_agent(server.spawn(f"{marker} say done")["id"])
    assert agent["status"] == "completed", agent
    for path in ("/api/health", "/api/agents", "/api/tasks", "/api/queue", "/api/events", "/metrics", "/"):
        server.client.get(path)
    server.stop()  # what shutting down imports counts too

    modules = imported_modules(server.log())
    packages = {name.split(".")[0] for name in modules}
    assert {"orchestrator", "uvicorn", "fastapi", "sqlalchemy"} <= packages, "no import lines: check broken"
    assert packages & NOT_IN_THE_SERVICE == set()
    # the tests' environment has trio (for selenium) and httpcore tries it; the service runs on asyncio
    # (a refused attempt at the package itself still gets its line, a loaded one brings its submodules)
    assert [name for name in modules if name.startswith("trio.")] == []
    assert server.query("SELECT version_num FROM alembic_version") == [
        (HEAD_REVISION,)
    ]  # yet it was migrated


def _wakes(pid: int) -> int:
    """How often the process's main thread (its event loop) has gone to sleep and been woken."""
    status = Path(f"/proc/{pid}/task/{pid}/status").read_text()
    return int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)$", status, re.M)[1])  # type: ignore[index]


def test_the_idle_service_sleeps(make_server: ServerFactory) -> None:
    # what wakes it idle is its own looks (the webhook deliverer's, the event inbox's, twice a second
    # each), not uvicorn's tick ten times a second: that alone cost the idle service 2 ms of CPU a second
    server = make_server()
    proc = server.proc
    assert proc is not None
    time.sleep(1)
    before = _wakes(proc.pid)
    time.sleep(5)
    assert (_wakes(proc.pid) - before) / 5 < 10
    proc.send_signal(signal.SIGTERM)  # a stop signal still ends it (uvicorn raises it again once done)
    assert proc.wait(30) == -signal.SIGTERM
