"""The task page's pure rules: a task's waits on its timeline, and a diff's pages."""

from __future__ import annotations

from typing import Any

from orchestrator.domain import diff_pages as dp
from orchestrator.domain.task_timeline import timeline


def agent(agent_id: str, kind: str, start: str, end: str | None, **more: Any) -> dict[str, Any]:
    return {
        "id": agent_id,
        "agent_type": kind,
        "status": "completed" if end else "running",
        "created_at": start,
        "started_at": start,
        "completed_at": end,
        **more,
    }


def event(type_: str, at: str, **payload: Any) -> dict[str, Any]:
    return {"type": type_, "created_at": at, "payload": payload}


def test_waits_start_when_the_step_before_them_ended_and_the_open_one_runs_on() -> None:
    task = {
        "id": "task-1",
        "status": "awaiting_approval",
        "created_at": "2026-01-01T09:59:00.000Z",
        "waiting_for": "approval:merge",
        "waiting_since": "2026-01-01T10:20:00.000Z",
    }
    agents = [
        agent("a1", "coding", "2026-01-01T10:00:00.000Z", "2026-01-01T10:05:00.000Z", cost_usd=0.5),
        agent("a2", "reviewer", "2026-01-01T10:12:00.000Z", "2026-01-01T10:15:00.000Z", cost_usd=0.25),
    ]
    events = [
        event("agent.finished", "2026-01-01T10:05:01.000Z"),
        event("pr.checks.passed", "2026-01-01T10:11:00.000Z", waited_for="checks"),
        event("task.approved", "2026-01-01T10:19:00.000Z", gate="deploy"),
    ]
    line = timeline(task, agents, events, "2026-01-01T10:30:00.000Z")
    assert line["waits"] == [
        {"kind": "checks", "start": "2026-01-01T10:05:00.000Z", "end": "2026-01-01T10:11:00.000Z",
         "outcome": "pr.checks.passed"},
        {"kind": "approval:deploy", "start": "2026-01-01T10:15:00.000Z", "end": "2026-01-01T10:19:00.000Z",
         "outcome": "task.approved"},
        {"kind": "approval:merge", "start": "2026-01-01T10:20:00.000Z", "end": None, "outcome": None},
    ]  # fmt: skip
    assert line["cost_usd"] == 0.75 and line["input_tokens"] == 0


def test_flags_and_marked_ends_are_named_once_and_rounds_count_per_type() -> None:
    flags = [{"name": "looping"}, {"name": "looping"}, "junk", {"detail": "no name"}]
    agents = [
        agent("c1", "coding", "2026-01-01T10:00:00.000Z", "2026-01-01T10:01:00.000Z", flags=flags,
              end_reason="rate_limited"),
        agent("r1", "reviewer", "2026-01-01T10:02:00.000Z", "2026-01-01T10:03:00.000Z",
              end_reason="completed"),
        agent("c2", "coding", "2026-01-01T10:04:00.000Z", None),
    ]  # fmt: skip
    task = {"id": "t", "status": "in_progress", "created_at": "2026-01-01T10:00:00.000Z"}
    spans = timeline(task, agents, [], "2026-01-01T10:05:00.000Z")["agents"]
    assert [(s["id"], s["round"], s["flags"]) for s in spans] == [
        ("c1", 1, ["looping", "rate_limited"]),
        ("r1", 1, []),
        ("c2", 2, []),
    ]
    assert spans[2]["end"] is None


def test_numstat_is_read_as_files_and_binary_files_have_no_counts() -> None:
    out = b"3\t1\tsrc/a.py\x00-\t-\tlogo.png\x0012\t0\tname with\ttab\x00"
    stats = dp.parse_numstat(out)
    assert [(s.path, s.additions, s.deletions, s.binary) for s in stats] == [
        ("src/a.py", 3, 1, False),
        ("logo.png", None, None, True),
        ("name with\ttab", 12, 0, False),
    ]
    assert [s.path for s in dp.parse_numstat(out[:-5], complete=False)] == ["src/a.py", "logo.png"]


def test_pages_hold_so_many_lines_and_files_and_a_large_file_alone() -> None:
    stats = [dp.FileStat(f"f{i}", 10, 0) for i in range(5)] + [dp.FileStat("big", 5000, 0)]
    stats += [dp.FileStat("bin", None, None)]
    assert dp.paginate(stats, lines=25, files=10) == [[0, 1], [2, 3], [4], [5], [6]]
    assert dp.paginate(stats, lines=10_000, files=3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert dp.paginate([]) == [[]]


def test_a_patch_splits_at_its_file_headers_only() -> None:
    text = (
        "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+one\rdiff --git a/evil b/evil\n"
        "diff --git a/y b/y\n+two\n"
    )
    pieces = dp.split_patch(text)
    assert len(pieces) == 2
    assert pieces[0].startswith("diff --git a/x b/x") and "+one\rdiff --git a/evil" in pieces[0]
    assert pieces[1].startswith("diff --git a/y b/y")
