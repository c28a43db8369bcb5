"""Telling the log bus and the listeners (queue, workflow, webhooks) that an agent ended or was flagged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from orchestrator.agents.log_bus import EndItem, FlagItem, LogBus
from orchestrator.clock import utc_now
from orchestrator.domain.watchdog import Flag
from orchestrator.store.agents import AgentRow, AgentStore

log = logging.getLogger(__name__)

EndListener = Callable[[AgentRow], None]
FlagListener = Callable[[str, dict[str, Any]], None]


class Announcer:
    def __init__(self, agents: AgentStore, bus: LogBus) -> None:
        self._agents = agents
        self._bus = bus
        self._end_listeners: list[EndListener] = []
        self._flag_listeners: list[FlagListener] = []

    def on_end(self, listener: EndListener) -> None:
        self._end_listeners.append(listener)

    def on_flag(self, listener: FlagListener) -> None:
        self._flag_listeners.append(listener)

    def followed(self, agent_id: str) -> bool:
        """Whether a reader follows the agent's live log now."""
        return self._bus.has_readers(agent_id)

    def ended(self, agent_id: str, row: AgentRow | None = None) -> None:
        """The final row, as stored (given when the caller read it with its end; else read here), to every
        reader and listener; a failing listener stops no other."""
        row = row if row is not None else self._agents.get(agent_id)
        if row is None:
            return
        self._bus.publish(agent_id, EndItem(row["status"], row))
        for listener in self._end_listeners:
            try:
                listener(row)
            except Exception:
                log.exception("end listener failed for %s", agent_id)

    def flagged(self, agent_id: str, flag: Flag) -> None:
        entry = {"name": flag.name, "detail": flag.detail, "at": utc_now()}
        self._agents.add_flag(agent_id, entry)
        self._bus.publish(agent_id, FlagItem(flag.name, flag.detail))
        log.warning("agent %s flagged %s: %s", agent_id, flag.name, flag.detail)
        for listener in self._flag_listeners:
            listener(agent_id, entry)
