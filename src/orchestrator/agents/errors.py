"""What a request about agents may fail with: kinds of the service's exception tree."""

from __future__ import annotations

from typing import Self, cast

from orchestrator import errors


class AgentError(errors.ServiceError):
    """A request about agents that cannot be done. `status` picks its kind: `AgentError(m, 404)` is an
    `AgentNotFound`, 409 an `AgentConflict`, 503 an `AgentUnavailable` (a refusal for now)."""

    def __new__(cls, message: str, status: int = 400) -> Self:
        kind = _AGENT_KINDS.get(status, cls) if cls is AgentError else cls
        return cast(Self, super().__new__(kind, message))

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class AgentNotFound(AgentError, errors.NotFound):
    pass


class AgentConflict(AgentError, errors.Conflict):
    pass


class AgentUnavailable(AgentError, errors.Unavailable):
    pass


_AGENT_KINDS: dict[int, type[AgentError]] = {404: AgentNotFound, 409: AgentConflict, 503: AgentUnavailable}


class AgentTakenOver(AgentConflict):
    """Another instance declared this one dead and took the agent while it was being started."""
