"""`orchestrator events ...` and `orchestrator github status`: the workflow's events and the GitHub link."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.common import (
    JsonFlag,
    connect,
    console,
    dash,
    id_column,
    print_json,
    status_markup,
    table,
    wants_json,
    when,
)
from orchestrator.domain.events import EventStatus, EventType

events_app = typer.Typer(help="Events of the workflow: list and show.", no_args_is_help=True)
github_app = typer.Typer(help="The service's GitHub access.", no_args_is_help=True)

STATUS_STYLE = {"pending": "cyan", "processing": "cyan", "processed": "green", "failed": "red"}


def _status(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status_markup(status)


@events_app.command("ls")
def list_events(
    ctx: typer.Context,
    event_type: Annotated[EventType | None, typer.Option("--type", help="Only events of this type.")] = None,
    task: Annotated[str | None, typer.Option(help="Only the events of this task.")] = None,
    status: Annotated[EventStatus | None, typer.Option(help="Only events in this status.")] = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only events not handled yet.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json_out: JsonFlag = False,
) -> None:
    """List events, newest first."""
    with connect(ctx) as client:
        if pending:
            page = client.pending_events(task_id=task, limit=limit, offset=offset)
        else:
            page = client.list_events(
                event_type=event_type, task_id=task, status=status, limit=limit, offset=offset
            )
    if wants_json(ctx, json_out):
        print_json(page)
        return
    ids = id_column(e.id for e in page.items)
    rows = table(ids, "TYPE", "STATUS", "TASK", "AGENT", "CREATED", "TRIES", "ERROR", wrap=("ERROR",))
    for e in page.items:
        rows.add_row(
            escape(e.id),
            e.type,
            _status(e.status),
            escape(dash(e.task_id)),
            dash(e.agent_id),
            when(e.created_at, short=True),
            str(e.attempts),
            escape(dash(e.error)),
        )
    console.print(rows)
    shown = f"{offset + 1}-{offset + len(page.items)}" if page.items else "none"
    console.print(f"[dim]{shown} of {page.total}[/]")


@events_app.command("show")
def show_event(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="The event's id.", show_default=False)],
    json_out: JsonFlag = False,
) -> None:
    """An event with its payload."""
    with connect(ctx) as client:
        event = client.get_event(event_id)
    if wants_json(ctx, json_out):
        print_json(event)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in (
        ("id", escape(event.id)),
        ("type", event.type),
        ("status", _status(event.status)),
        ("task", escape(dash(event.task_id))),
        ("agent", dash(event.agent_id)),
        ("created", when(event.created_at)),
        ("processed", when(event.processed_at)),
        ("attempts", str(event.attempts)),
        ("error", escape(dash(event.error))),
        ("payload", escape(json.dumps(event.payload, indent=2, ensure_ascii=False))),
    ):
        grid.add_row(key, value)
    console.print(grid)


@github_app.command("status")
def github_status(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """The service's GitHub token and what GitHub says of it. Exit 1 when it has none or a bad one."""
    with connect(ctx) as client:
        status = client.github_status()
    if wants_json(ctx, json_out):
        print_json(status)
    elif not status.configured:
        console.print(
            f"[yellow]not configured[/]: set GITHUB_TOKEN in the service's environment ({status.api_url})"
        )
    elif status.valid is False:
        console.print(
            f"[red]token refused[/] by {status.api_url}: {escape(dash(status.error))}", soft_wrap=True
        )
    else:
        scopes = "-" if status.scopes is None else ", ".join(status.scopes) or "none"
        rate = status.rate_limit
        left = f"{rate.remaining}/{rate.limit} requests left" if rate else "rate limit unknown"
        console.print(
            f"[green]ok[/]: {escape(dash(status.login))} at {status.api_url}, owner {escape(status.owner)}, "
            f"scopes {escape(scopes)}, {left}",
            soft_wrap=True,
        )
    raise typer.Exit(0 if status.configured and status.valid is not False else 1)
