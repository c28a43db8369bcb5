"""The one place that says which status may follow which."""

from orchestrator.domain.types import AgentStatus

_AGENT_MOVES: dict[AgentStatus, frozenset[AgentStatus]] = {
    AgentStatus.STARTING: frozenset(
        {
            AgentStatus.RUNNING,
            AgentStatus.FAILED,
            AgentStatus.TIMEOUT,
            AgentStatus.KILLED,
            AgentStatus.RATE_LIMITED,
        }
    ),
    AgentStatus.RUNNING: frozenset(
        {
            AgentStatus.COMPLETED,
            AgentStatus.FAILED,
            AgentStatus.TIMEOUT,
            AgentStatus.KILLED,
            AgentStatus.RATE_LIMITED,
        }
    ),
    AgentStatus.COMPLETED: frozenset(),
    AgentStatus.FAILED: frozenset(),
    AgentStatus.TIMEOUT: frozenset(),
    AgentStatus.KILLED: frozenset(),
    AgentStatus.RATE_LIMITED: frozenset(),
}


def agent_may_move(current: AgentStatus, target: AgentStatus) -> bool:
    return target in _AGENT_MOVES[current]


def agent_sources_for(target: AgentStatus) -> frozenset[AgentStatus]:
    """Statuses from which `target` may be reached: the guard of a conditional UPDATE."""
    return frozenset(src for src, dests in _AGENT_MOVES.items() if target in dests)
