"""Agent profiles: named settings over a base agent type (prompt template, model, turns, budget, tools,
MCP servers), set by whoever holds the API token and used by name when spawning an agent or from a
repository's workflow file (`profile = "name"` under `[agents.<type>]`, its own keys over the profile's)."""

from __future__ import annotations

import re

from pydantic import field_validator

from orchestrator.domain.types import AgentType
from orchestrator.domain.workflow_file import PROFILE_NAME, AgentSettings

NAME = re.compile(PROFILE_NAME)


class Profile(AgentSettings):
    """A profile as the API takes and gives it: its base agent type and the settings of
    `[agents.<type>]` in a workflow file, but no profile of its own."""

    agent_type: AgentType

    @field_validator("profile")
    @classmethod
    def _no_profile(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("a profile does not name another profile")
        return value

    def settings(self) -> AgentSettings:
        return AgentSettings.model_validate(self.model_dump(exclude={"agent_type"}, exclude_none=True))
