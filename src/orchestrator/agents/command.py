"""The `claude` command line and environment of one agent. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.runtimes.procfs import MARKER_VARIABLE

# An allow-list: cloud credentials (AWS_*, GOOGLE_*...) reach agents only if AGENT_ENV_PASSTHROUGH names them.
PASSTHROUGH_PREFIXES = ("ANTHROPIC_", "CLAUDE_CODE_")
PASSTHROUGH_NAMES = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "NODE_EXTRA_CA_CERTS",
)
NEVER_PASSED = ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_WEBHOOK_SECRET", "ORCHESTRATOR_API_TOKEN", "DATABASE_URL")
NEVER_PASSED_PREFIXES = ("ORCHESTRATOR_",)


def never_passed(name: str) -> bool:
    """The service's own secrets: no setting can hand them to an agent."""
    return name in NEVER_PASSED or name.startswith(NEVER_PASSED_PREFIXES)


QUIET_ENVIRONMENT = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "TERM": "dumb",
    "NO_COLOR": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "orchestrator agent",
    "GIT_AUTHOR_EMAIL": "agent@orchestrator.invalid",
    "GIT_COMMITTER_NAME": "orchestrator agent",
    "GIT_COMMITTER_EMAIL": "agent@orchestrator.invalid",
}


@dataclass(frozen=True)
class ClaudeInvocation:
    """The CLI's options. The prompt is not among them: runtimes hand it over on stdin (or after `--`),
    so a prompt that starts with '-' is never read as an option and none is capped by MAX_ARG_STRLEN."""

    claude_bin: str
    max_turns: int
    model: str | None = None
    resume_session: str | None = None
    append_system_prompt: str | None = None
    add_dirs: tuple[str, ...] = ()
    max_budget_usd: float | None = None  # the CLI's own stop, a backstop to the watchdog's
    allowed_tools: tuple[str, ...] = ()
    disallowed_tools: tuple[str, ...] = ()
    permission_mode: str = "bypassPermissions"
    mcp_config: str | None = None  # a file the service wrote: the only MCP servers the agent gets


def build_argv(inv: ClaudeInvocation) -> list[str]:
    argv = [
        inv.claude_bin,
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--max-turns",
        str(inv.max_turns),
    ]
    if inv.permission_mode == "bypassPermissions":
        argv.append("--dangerously-skip-permissions")
    else:  # nobody answers a prompt: what would ask is denied
        argv += ["--permission-mode", inv.permission_mode, "--permission-prompts", "none"]
    if inv.max_budget_usd is not None:
        argv += ["--max-budget-usd", f"{max(inv.max_budget_usd, 0.000001):.6f}"]
    # one option per value: the options take several, and none of these values starts with '-'
    for option, tools in (("--allowedTools", inv.allowed_tools), ("--disallowedTools", inv.disallowed_tools)):
        for tool in tools:
            if tool.startswith("-"):
                raise ValueError(f"{option}: {tool[:40]!r} would be read as an option")
            argv += [option, tool]
    # the service's config or none: a `.mcp.json` in the checkout (the repository's, or one an agent
    # wrote for the next) adds no server
    argv.append("--strict-mcp-config")
    # settings from the service's CLAUDE_CONFIG_DIR only: a `.claude/settings*.json` in the checkout (one an
    # agent wrote for the next) neither widens the tools a stage was given nor plants CLI hooks
    argv += ["--setting-sources", "user"]
    if inv.mcp_config is not None:
        argv += ["--mcp-config", inv.mcp_config]
    if inv.model:
        argv += ["--model", inv.model]
    if inv.resume_session:
        argv += ["--resume", inv.resume_session]
    for directory in inv.add_dirs:
        argv += ["--add-dir", directory]
    if inv.append_system_prompt:
        argv += ["--append-system-prompt", inv.append_system_prompt]
    return argv


def build_env(
    parent: Mapping[str, str],
    *,
    agent_id: str,
    home: Path,
    config_dir: Path,
    running_as_root: bool,
    passthrough: Collection[str] = (),
) -> dict[str, str]:
    """A token-free environment: only what the CLI needs, the model API settings, the names the operator
    listed in `passthrough` (AGENT_ENV_PASSTHROUGH), and the agent marker."""
    env = {
        k: v
        for k, v in parent.items()
        if (k in PASSTHROUGH_NAMES or k.startswith(PASSTHROUGH_PREFIXES) or k in passthrough)
        and not never_passed(k)
    }
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(QUIET_ENVIRONMENT)
    env["HOME"] = str(home)
    env["CLAUDE_CONFIG_DIR"] = str(config_dir)
    env[MARKER_VARIABLE] = agent_id
    if running_as_root:
        env["IS_SANDBOX"] = "1"
    return env
