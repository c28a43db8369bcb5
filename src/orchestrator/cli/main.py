"""The `orchestrator` command."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from orchestrator.cli import agents, events, profiles, queue, serve, tasks, workflow_file
from orchestrator.cli.common import (
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

app = typer.Typer(help="Run fleets of Claude Code agents.", no_args_is_help=True, add_completion=False)
app.add_typer(agents.app, name="agents")
app.add_typer(tasks.app, name="tasks")
app.add_typer(queue.app, name="queue")
app.add_typer(events.events_app, name="events")
app.add_typer(events.github_app, name="github")
app.add_typer(workflow_file.app, name="workflow")
app.add_typer(profiles.app, name="profiles")
app.command()(serve.serve)
app.command("install-claude")(serve.install_claude)


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
    from orchestrator.cli.doctor import run_checks

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
