"""The `orchestrator` command."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from typing import Annotated

import typer
from rich.markup import escape

from orchestrator import cli_agents, cli_events, cli_queue, cli_tasks
from orchestrator.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    JsonFlag,
    Options,
    connect,
    console,
    dash,
    options,
    print_json,
    wants_json,
)
from orchestrator.client import TOKEN_ENV, URL_ENV
from orchestrator.settings import (
    CLAUDE_CODE_VERSION,
    SettingsError,
    claude_install_dir,
    installed_claude,
    load_settings,
)

app = typer.Typer(help="Run fleets of Claude Code agents.", no_args_is_help=True, add_completion=False)
app.add_typer(cli_agents.app, name="agents")
app.add_typer(cli_tasks.app, name="tasks")
app.add_typer(cli_queue.app, name="queue")
app.add_typer(cli_events.events_app, name="events")
app.add_typer(cli_events.github_app, name="github")


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            envvar=URL_ENV, show_envvar=True, help="The server's address (default http://127.0.0.1:3020)."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=TOKEN_ENV,
            show_envvar=True,
            help="The server's API token (default: the one a local server generated in its data directory).",
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Run fleets of Claude Code agents: the service (`serve`), and commands that talk to it.

    Exit codes: 0 ok, 1 the operation failed or the server refused it, 2 a wrong command line,
    3 the server could not be reached or failed.
    """
    ctx.obj = Options(url=url, token=token, json=json_out)


@app.command()
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


@app.command()
def health(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """The server's health: database, runtime, claude CLI. Exit 1 when it is degraded."""
    with connect(ctx) as client:
        answer = client.health()
    if wants_json(ctx, json_out):
        print_json(answer)
    else:
        style = "green" if answer.status == "ok" else "red"
        console.print(
            f"[{style}]{answer.status}[/] {client.base_url}: version {dash(answer.version)}, "
            f"instance {escape(dash(answer.instance_id))}, {dash(answer.running_agents)} agents running here",
            soft_wrap=True,
        )
        console.print(
            f"  database {escape(dash(answer.database))}\n  runtime  {escape(dash(answer.runtime))}\n"
            f"  claude   {escape(dash(answer.claude))}",
            soft_wrap=True,
        )
    raise typer.Exit(EXIT_OK if answer.status == "ok" else EXIT_FAILED)


@app.command()
def doctor(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Check the set-up without the server: claude CLI, database, runtime, GitHub, and the server's answer."""
    from orchestrator.cli_doctor import run_checks

    opts = options(ctx)
    checks = run_checks(opts.url, opts.token)
    failed = any(c.state == "fail" for c in checks)
    if wants_json(ctx, json_out):
        print_json({"ok": not failed, "checks": [c.as_dict() for c in checks]})
    else:
        marks = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]"}
        for check in checks:
            console.print(f"{marks[check.state]} {check.name:<9} {escape(check.detail)}", soft_wrap=True)
            if check.fix and check.state != "ok":
                console.print(f"  [dim]→ {escape(check.fix)}[/]", soft_wrap=True)
        console.print("[red]not ready[/]" if failed else "[green]ready[/]")
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(app())
