"""The commands that run on this machine without a server: `serve` and `install-claude`."""

from __future__ import annotations

import os
import resource
import subprocess
from typing import Annotated

import typer

from orchestrator.settings import (
    CLAUDE_CODE_VERSION,
    SettingsError,
    claude_install_dir,
    installed_claude,
    load_settings,
)


def serve(
    kill_agents_on_shutdown: Annotated[
        bool, typer.Option(help="End running agents on shutdown instead of leaving them for the next start.")
    ] = False,
) -> None:
    """Start the HTTP service on HOST:PORT (settings from the environment)."""
    os.umask(0o077)  # what the service creates (data, store, workspaces, runs) is for its user alone
    # each agent's egress proxy may hold hundreds of sockets: the soft limit (often 1024) must not let a
    # few agents starve the service of descriptors for its store and its API
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    import uvicorn

    from orchestrator.api_token import TokenFileError
    from orchestrator.app import create_app
    from orchestrator.store import file_lock

    if settings.sqlite_file is not None:
        try:
            file_lock.hold(settings.sqlite_file)
        except file_lock.DatabaseInUse as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    try:
        application = create_app(settings, kill_agents_on_shutdown=kill_agents_on_shutdown)
    except TokenFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


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
