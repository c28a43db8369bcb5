"""A task's timeline: its agents as spans on a time axis, and the waits between them (for the PR's checks,
for it to become mergeable, at an approval gate), computed from the task's agents and events as the store
holds them. A wait that ended is known by the fact that ended it (the PR watcher's event names the wait in
`waited_for`; a person's answer names its gate); it began when the step before it ended. The wait the
task is in now is the task's own `waiting_for` since `waiting_since`. Timestamps are the store's ISO-8601
UTC text, which sorts as time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.domain.events import EventType

# What the dashboard marks on a bar: the watchdog's flags, and the ends that were not a clean finish.
MARKED_END_REASONS = frozenset(
    {"budget_exceeded", "stalled", "looping", "rate_limited", "timeout", "killed", "lost", "start_failed"}
)
_ANSWERS = (EventType.TASK_APPROVED.value, EventType.TASK_REJECTED.value)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def agent_span(agent: Mapping[str, Any], round_of_type: int) -> dict[str, Any]:
    """One agent as a bar: when it ran, what it cost, how it ended and what was flagged on the way."""
    flags = [str(f.get("name")) for f in agent.get("flags") or [] if isinstance(f, Mapping) and f.get("name")]
    end_reason = agent.get("end_reason")
    if end_reason in MARKED_END_REASONS:
        flags.append(str(end_reason))
    return {
        "id": agent["id"],
        "agent_type": agent["agent_type"],
        "status": agent["status"],
        "round": round_of_type,
        "start": agent.get("started_at") or agent["created_at"],
        "end": agent.get("completed_at"),
        "cost_usd": agent.get("cost_usd"),
        "input_tokens": agent.get("input_tokens"),
        "output_tokens": agent.get("output_tokens"),
        "num_turns": agent.get("num_turns"),
        "end_reason": end_reason,
        "error": agent.get("error"),
        "flags": list(dict.fromkeys(flags)),
    }


def _wait_kind(event: Mapping[str, Any]) -> str | None:
    payload = event.get("payload") or {}
    if not isinstance(payload, Mapping):
        return None
    if event.get("type") in _ANSWERS and isinstance(payload.get("gate"), str):
        return f"approval:{payload['gate']}"
    waited = payload.get("waited_for")
    return waited if isinstance(waited, str) and waited else None


def waits(
    task: Mapping[str, Any], agents: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The task's waits, oldest first; the open one (if any) last, with no end."""
    steps = sorted(str(a["completed_at"]) for a in agents if a.get("completed_at"))
    found: list[dict[str, Any]] = []
    last_end = ""
    for event in sorted(events, key=lambda e: str(e["created_at"])):
        kind = _wait_kind(event)
        if kind is None:
            continue
        end = str(event["created_at"])
        before = [s for s in steps if s <= end] + ([last_end] if last_end and last_end <= end else [])
        start = max(before) if before else end
        found.append({"kind": kind, "start": start, "end": end, "outcome": event["type"]})
        last_end = end
    if task.get("waiting_for") and task.get("waiting_since"):
        found.append(
            {"kind": task["waiting_for"], "start": task["waiting_since"], "end": None, "outcome": None}
        )
    return found


def timeline(
    task: Mapping[str, Any],
    agents: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    now: str,
) -> dict[str, Any]:
    """The task's agents (oldest first, each numbered within its type: the second coding agent is the
    first fix-up round), its waits, and what its agents cost and used so far."""
    seen: Counter[str] = Counter()
    spans = []
    for agent in sorted(agents, key=lambda a: (str(a["created_at"]), str(a["id"]))):
        seen[str(agent["agent_type"])] += 1
        spans.append(agent_span(agent, seen[str(agent["agent_type"])]))
    return {
        "task_id": task["id"],
        "status": task["status"],
        "created_at": task["created_at"],
        "now": now,
        "agents": spans,
        "waits": waits(task, agents, events),
        "cost_usd": round(sum(_number(a.get("cost_usd")) for a in agents), 6),
        "input_tokens": int(sum(_number(a.get("input_tokens")) for a in agents)),
        "output_tokens": int(sum(_number(a.get("output_tokens")) for a in agents)),
    }
