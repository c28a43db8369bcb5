"""A kill during an agent's workspace hooks, its end written while the SQLite database is locked by another
process (real server, real hook processes): the write waits off the event loop (the API answers
meanwhile), and a second kill landing on the waiting write does not lose it."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import httpx

from orchestrator.agents.spawner import SPAWN_THREADS
from tests.e2e.test_faults import locked, sqlite_only
from tests.e2e.test_workflow import PLAN, STARTER
from tests.e2e.test_workflow_file import _commit_file, _queue
from tests.e2e.test_workspace_hooks import _sleepers
from tests.support import fake_anthropic as fm
from tests.support.runtimes import require_bwrap
from tests.support.server import Server


def _post(server: Server, path: str, body: dict[str, str] | None = None) -> None:
    """In the background: its answer does not matter, the service may be stopping."""

    def post() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{server.url}{path}", json=body, headers=server.headers, timeout=60)

    threading.Thread(target=post, daemon=True).start()


@sqlite_only
def test_a_kill_during_the_hooks_writes_the_end_off_the_loop_and_a_second_kill_does_not_lose_it(
    make_server, workflow_env: dict[str, str], fake_model: fm.FakeAnthropic, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    require_bwrap()
    tag = "2617.75"  # a sleep only this hook runs
    project = Path(workflow_env["PROJECTS_DIR"]) / "calc"
    _commit_file(project, f'[hooks]\nbefore_run = "sleep {tag}"\n', tmp_path)
    marker = fake_model.roles({STARTER: [[PLAN]]})
    server = make_server(**workflow_env)
    agent_id = server.first_agent_of(_queue(server, f"One. {marker}"))
    deadline = time.monotonic() + 60
    while not _sleepers(tag):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)

    database = server.data_dir / "orchestrator.db"
    with locked(database):
        # two spawns whose rows wait for the lock hold both spawn threads: the end's write queues
        for _ in range(SPAWN_THREADS):
            _post(server, "/api/agents/spawn", {"agent_type": "coding", "prompt": "while locked"})
        time.sleep(2)
        _post(server, f"/api/agents/{agent_id}/kill")
        while _sleepers(tag):  # the kill ended the hook; the agent's end now waits for the lock
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        time.sleep(1)
        answered = server.client.get(f"/api/agents/{agent_id}", timeout=3)  # the loop is not held
        assert answered.status_code == 200, answered.text
        assert answered.json()["status"] == "starting"
        _post(server, f"/api/agents/{agent_id}/kill")  # a second kill cancels the spawn's job again
        time.sleep(1)
    done = server.wait_agent(agent_id, timeout=30)
    assert (done["status"], done["end_reason"]) == ("killed", "killed"), done
    assert fake_model.requests_for(marker) == []
