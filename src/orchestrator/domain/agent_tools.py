"""What an agent may use: tool names or patterns allowed and denied, its permission mode, and its MCP
servers (stdio commands run by the CLI inside the agent's sandbox). Written by hostile hands (a
repository's workflow file), so every value is checked here: plain printable strings, capped counts and
lengths, nothing that the CLI could read as an option, and secrets only by reference (`${env:NAME}`),
resolved by the service against an operator's allow-list."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

TOOLS_MAX = 64
TOOL_PATTERN_MAX = 256
SERVERS_MAX = 16
ARGS_MAX = 64
ENV_MAX = 64
VALUE_MAX = 4096

# The CLI's own modes, the most permissive first. bypassPermissions is the service's default
# (`--dangerously-skip-permissions`); any other runs with `--permission-prompts none`: what would ask a
# person is denied, since nobody is there to answer.
PermissionMode = Literal["bypassPermissions", "acceptEdits", "manual", "dontAsk"]
BYPASS: PermissionMode = "bypassPermissions"

ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]{0,127})\}")
_ANY_REFERENCE = re.compile(r"\$\{[^}]*\}?")


def _plain(value: str) -> str:
    if not value.isprintable():
        raise ValueError("only printable characters (no newline, tab or control character)")
    return value


def _tool_pattern(value: str) -> str:
    _plain(value)
    if value != value.strip() or value.startswith("-"):
        raise ValueError("a tool name or pattern starts with no space and no '-' (e.g. Edit, Bash(git *))")
    return value


def _no_reference(value: str) -> str:
    _plain(value)
    if "${" in value:
        raise ValueError("`${...}` is not expanded here: secrets go in `env` as ${env:NAME}")
    return value


def _env_value(value: str) -> str:
    _plain(value)
    for found in _ANY_REFERENCE.finditer(value):
        if not ENV_REFERENCE.fullmatch(found.group(0)):
            raise ValueError(f"{found.group(0)[:80]!r}: the only reference is ${{env:NAME}}")
    return value


ToolPattern = Annotated[
    str, StringConstraints(min_length=1, max_length=TOOL_PATTERN_MAX), AfterValidator(_tool_pattern)
]
ServerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
_Command = Annotated[
    str, StringConstraints(min_length=1, max_length=VALUE_MAX), AfterValidator(_no_reference)
]
_Arg = Annotated[str, StringConstraints(max_length=VALUE_MAX), AfterValidator(_no_reference)]
_EnvValue = Annotated[str, StringConstraints(max_length=VALUE_MAX), AfterValidator(_env_value)]


class McpServer(BaseModel):
    """A stdio MCP server: the CLI starts `command` with `args` (in the agent's working directory,
    inside its sandbox), its environment the agent's plus `env`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: _Command
    args: Annotated[list[_Arg], Field(max_length=ARGS_MAX)] = []
    env: Annotated[dict[EnvName, _EnvValue], Field(max_length=ENV_MAX)] = {}


class EnvReferenceError(ValueError):
    """A `${env:NAME}` the service will not fill; `field` names where it stands."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def references(servers: Mapping[str, McpServer]) -> list[tuple[str, str]]:
    """(field, NAME) of every `${env:NAME}` in the servers' env values, in order."""
    return [
        (f"mcp_servers.{name}.env.{key}", found.group(1))
        for name, server in servers.items()
        for key, value in server.env.items()
        for found in ENV_REFERENCE.finditer(value)
    ]


def check_references(servers: Mapping[str, McpServer], allowed: frozenset[str]) -> None:
    """EnvReferenceError for the first `${env:NAME}` whose NAME is not in `allowed`."""
    for field, name in references(servers):
        if name not in allowed:
            raise EnvReferenceError(
                field, f"${{env:{name}}}: {name} is not in MCP_ENV_ALLOWLIST (the service fills only those)"
            )


def mcp_config(
    servers: Mapping[str, McpServer], environ: Mapping[str, str], allowed: frozenset[str]
) -> dict[str, Any]:
    """The `--mcp-config` document with every `${env:NAME}` filled from `environ`. EnvReferenceError for
    a NAME not in `allowed` or not set in `environ`."""
    check_references(servers, allowed)

    def fill(field: str, value: str) -> str:
        def one(found: re.Match[str]) -> str:
            name = found.group(1)
            if name not in environ:
                unset = f"${{env:{name}}}: {name} is not set in the service's environment"
                raise EnvReferenceError(field, unset)
            return environ[name]

        return ENV_REFERENCE.sub(one, value)

    document = {
        "mcpServers": {
            name: {
                "type": "stdio",
                "command": server.command,
                "args": list(server.args),
                "env": {key: fill(f"mcp_servers.{name}.env.{key}", v) for key, v in server.env.items()},
            }
            for name, server in servers.items()
        }
    }
    return document


class AgentTools(BaseModel):
    """An agent's tools, permission mode and MCP servers, as the CLI gets them (agents/command.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_tools: Annotated[list[ToolPattern], Field(max_length=TOOLS_MAX)] = []
    disallowed_tools: Annotated[list[ToolPattern], Field(max_length=TOOLS_MAX)] = []
    permission_mode: PermissionMode | None = None
    mcp_servers: Annotated[dict[ServerName, McpServer], Field(max_length=SERVERS_MAX)] = {}

    @property
    def mode(self) -> PermissionMode:
        """The mode the agent runs in: as set; else with an allow-list `dontAsk` (only the listed tools
        run: under bypassPermissions an allow-list would allow nothing more than everything); else
        bypassPermissions, as every agent without these settings."""
        if self.permission_mode is not None:
            return self.permission_mode
        return "dontAsk" if self.allowed_tools else BYPASS


NO_TOOLS = AgentTools()
