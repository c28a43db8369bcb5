"""The commands that run on this machine without a server: `serve` and `install-claude`."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer

from orchestrator.settings import CLAUDE_CODE_VERSION, claude_install_dir, installed_claude


def serve(
    kill_agents_on_shutdown: Annotated[
        bool, typer.Option(help="End running agents on shutdown instead of leaving them for the next start.")
    ] = False,
) -> None:
    """Start the HTTP service on HOST:PORT (settings from the environment)."""
    from orchestrator.serving import serve as run_service

    run_service(kill_agents_on_shutdown=kill_agents_on_shutdown)


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
