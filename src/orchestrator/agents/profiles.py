"""Agent profiles as the API asks for them: list, show, set (checked: names, values, and every
`${env:NAME}` against MCP_ENV_ALLOWLIST), delete; and a profile's settings for a spawn."""

from __future__ import annotations

from orchestrator.domain import agent_tools as at
from orchestrator.domain.profiles import NAME, Profile
from orchestrator.domain.types import AgentType
from orchestrator.domain.workflow_file import AgentSettings
from orchestrator.errors import Invalid, NotFound
from orchestrator.store.profiles import ProfileRow, ProfileStore


class ProfileRequests:
    def __init__(self, store: ProfileStore, env_names: frozenset[str]) -> None:
        self._store = store
        self._env_names = env_names

    def all(self) -> list[ProfileRow]:
        return self._store.all()

    def get(self, name: str) -> ProfileRow:
        row = self._store.get(name)
        if row is None:
            raise NotFound(f"profile {name[:64]!r} not found")
        return row

    def set(self, name: str, profile: Profile) -> tuple[ProfileRow, bool]:
        """The profile as stored and whether it is new."""
        if not NAME.match(name):
            raise Invalid(
                "letters, digits and . _ - (at most 64), starting with a letter or digit", field="name"
            )
        try:
            at.check_references(profile.mcp_servers or {}, self._env_names)
        except at.EnvReferenceError as exc:
            raise Invalid(str(exc).removeprefix(f"{exc.field}: "), field=exc.field) from None
        settings = profile.settings().model_dump(mode="json", exclude_none=True)
        return self._store.put(name, profile.agent_type.value, settings)

    def delete(self, name: str) -> None:
        if not self._store.delete(name):
            raise NotFound(f"profile {name[:64]!r} not found")


def settings_of(store: ProfileStore, name: str, agent_type: AgentType) -> AgentSettings:
    """The settings of profile `name` for an agent of `agent_type`; LookupError saying why not (no such
    profile, or one over another agent type)."""
    row = store.get(name)
    if row is None:
        raise LookupError(f"no profile {name!r}")
    if row["agent_type"] != agent_type.value:
        raise LookupError(
            f"profile {name!r} is over the {row['agent_type']} agent type, not {agent_type.value}"
        )
    return AgentSettings.model_validate(row["settings"])
