"""What a request about agents may fail with."""

from __future__ import annotations


class AgentError(Exception):
    """A request about agents that cannot be done; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class AgentTakenOver(AgentError):
    """Another instance declared this one dead and took the agent while it was being started."""
