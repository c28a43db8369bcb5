"""A host agent's end wakes its supervisor at once (a pidfd), however long the output poll has backed off."""

from __future__ import annotations

from pathlib import Path

from orchestrator.clock import parse_iso

RESULT = '{"type":"result","subtype":"success","is_error":false,"result":"ok"}'


def test_a_quiet_agent_is_seen_ending_at_once_not_at_the_next_poll(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "claude"
    script.write_text(f"#!/bin/sh\nsleep 2.5\necho '{RESULT}'\n")
    script.chmod(0o755)
    # polls back off 2 ms, 4 ms, ... 2 s, 4 s: the first look after the end at 2.5 s would come at about 4.1 s
    server = make_server(
        CLAUDE_BIN=str(script), OUTPUT_POLL_MAX_SECONDS="1", OUTPUT_POLL_UNWATCHED_SECONDS="5"
    )
    done = server.wait_agent(server.spawn("anything")["id"])
    assert done["status"] == "completed"
    ran = (parse_iso(done["completed_at"]) - parse_iso(done["started_at"])).total_seconds()
    assert 2.5 <= ran < 3.4
