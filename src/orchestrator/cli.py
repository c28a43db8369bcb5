"""The `orchestrator` command."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from orchestrator.settings import (
    CLAUDE_CODE_VERSION,
    SettingsError,
    claude_install_dir,
    installed_claude,
    load_settings,
)

app = typer.Typer(help="Run fleets of Claude Code agents.", no_args_is_help=True, add_completion=False)


@app.command()
def serve(
    kill_agents_on_shutdown: Annotated[
        bool, typer.Option(help="End running agents on shutdown instead of leaving them for the next start.")
    ] = False,
) -> None:
    """Start the HTTP service on HOST:PORT (settings from the environment)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    import uvicorn

    from orchestrator.app import create_app

    application = create_app(settings, kill_agents_on_shutdown=kill_agents_on_shutdown)
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command("install-claude")
def install_claude(
    version: Annotated[str, typer.Option(help="The claude-code release to install.")] = CLAUDE_CODE_VERSION,
) -> None:
    """Install the pinned `claude` CLI from npm where the service finds it by default."""
    target = installed_claude(version)
    if target.exists():
        typer.echo(str(target))
        return
    prefix = claude_install_dir(version)
    prefix.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(prefix),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"@anthropic-ai/claude-code@{version}",
        ],
        check=False,
    )
    if proc.returncode != 0 or not target.exists():
        typer.echo(f"error: npm could not install @anthropic-ai/claude-code@{version}", err=True)
        raise typer.Exit(1)
    typer.echo(str(target))


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(app())
