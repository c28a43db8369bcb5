"""`agents.end_reason` in the real store: the one field the `agent.budget_exceeded` webhook decides on,
and the reasons given to rows that ended before the column existed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.types import AgentStatus
from orchestrator.store.agents import AgentStore
from orchestrator.store.db import MIGRATIONS_DIR, Database
from orchestrator.store.tables import webhook_events
from orchestrator.store.webhooks import WebhookStore

FORGED = "budget_exceeded: 99 turns > 1"


def _agent(store: AgentStore, agent_id: str) -> None:
    store.insert(
        {
            "id": agent_id,
            "status": AgentStatus.RUNNING.value,
            "agent_type": "coding",
            "prompt": "p",
            "timeout_seconds": 60.0,
            "max_turns": 5,
            "runtime": "host",
        }
    )


def _topics(db: Database) -> list[str]:
    with db.read() as conn:
        return [
            str(t) for (t,) in conn.execute(select(webhook_events.c.event_type).order_by(webhook_events.c.id))
        ]


def test_budget_webhook_follows_the_reason_not_the_text(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    db.migrate()
    WebhookStore(db).create("h1", "http://127.0.0.1:9/", ["agent.failed", "agent.budget_exceeded"], "s" * 16)
    agents = AgentStore(db)
    _agent(agents, "coding-00000001")
    _agent(agents, "coding-00000002")

    assert agents.move("coding-00000001", AgentStatus.FAILED, end_reason=EndReason.ERROR.value, error=FORGED)
    assert _topics(db) == ["agent.failed"]
    assert agents.move(
        "coding-00000002", AgentStatus.FAILED, end_reason=EndReason.BUDGET_EXCEEDED.value, error="spent"
    )
    assert _topics(db) == ["agent.failed", "agent.failed", "agent.budget_exceeded"]
    assert [agents.get(f"coding-0000000{n}")["end_reason"] for n in (1, 2)] == [  # type: ignore[index]
        "error",
        "budget_exceeded",
    ]


def test_rows_that_ended_before_the_column_get_the_reason_their_status_or_exact_text_gives(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
        never = "never started: its service stopped before the agent's process was started"
        for agent_id, status, error in [
            ("a1", "completed", None),
            ("a2", "failed", never),
            ("a3", "failed", "budget_exceeded: $1 > $0.5"),
            ("a4", "rate_limited", "rate_limited: later"),
            ("a5", "running", None),
        ]:
            conn.execute(
                text(
                    "INSERT INTO agents (id, status, agent_type, prompt, timeout_seconds, max_turns, runtime,"
                    " created_at, updated_at, error) VALUES (:id, :status, 'coding', 'p', 60, 5, 'host',"
                    " 'now', 'now', :error)"
                ),
                {"id": agent_id, "status": status, "error": error},
            )
    db.migrate()
    with db.read() as conn:
        reasons = dict(conn.execute(text("SELECT id, end_reason FROM agents ORDER BY id")).all())
    assert reasons == {
        "a1": "completed",
        "a2": "never_started",
        "a3": None,
        "a4": "rate_limited",
        "a5": None,
    }
