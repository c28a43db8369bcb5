"""`orchestrator queue ...`: what waits and runs, and the queue's settings."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

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
from orchestrator.models import QueueSettingsModel, QueueStatus

app = typer.Typer(
    help="The queue: list, pause, resume, settings, add and remove tasks.", no_args_is_help=True
)

TaskId = Annotated[str, typer.Argument(help="The task's id.", show_default=False)]


def _settings_line(settings: QueueSettingsModel, reason: str | None = None) -> str:
    state = "[yellow]paused[/]" if settings.paused else "[green]running[/]"
    line = (
        f"queue {state}, max_concurrent {settings.max_concurrent}, "
        f"stop_on_failure {str(settings.stop_on_failure).lower()}"
    )
    return line + (f"\n[yellow]paused because: {escape(reason)}[/]" if reason else "")


def _show(status: QueueStatus, completed: bool) -> None:
    console.print(_settings_line(status.settings, status.pause_reason))
    items = status.items + (status.completed if completed else [])
    tasks = id_column((i.task_id for i in items), "TASK")
    agents = id_column((dash(i.agent_id) for i in items), "AGENT")
    rows = table("POS", tasks, "STATUS", "TITLE", agents, "QUEUED", "ERROR", wrap=("TITLE", "ERROR"))
    for i in items:
        rows.add_row(
            str(i.position),
            escape(i.task_id),
            status_markup(i.status.value),
            escape(dash(i.title)),
            dash(i.agent_id),
            when(i.queued_at, short=True),
            escape(dash(i.error)),
        )
    if items:
        console.print(rows)
    done = "" if completed else f", {len(status.completed)} ended (--all to list)"
    console.print(f"[dim]{status.processing} processing, {status.queued} queued{done}[/]")


@app.command("ls")
def list_queue(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Also the ended entries.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """The queue: settings, what runs, what waits."""
    with connect(ctx) as client:
        status = client.queue_status()
    if wants_json(ctx, json_out):
        print_json(status)
    else:
        _show(status, all_)


def _print_settings(ctx: typer.Context, settings: QueueSettingsModel, json_out: bool) -> None:
    if wants_json(ctx, json_out):
        print_json(settings)
    else:
        console.print(_settings_line(settings))


@app.command("pause")
def pause(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Start no new task (running ones go on)."""
    with connect(ctx) as client:
        settings = client.pause_queue()
    _print_settings(ctx, settings, json_out)


@app.command("resume")
def resume(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Start tasks again."""
    with connect(ctx) as client:
        settings = client.resume_queue()
    _print_settings(ctx, settings, json_out)


@app.command("set")
def set_setting(
    ctx: typer.Context,
    key: Annotated[
        str, typer.Argument(help="paused, stop_on_failure or max_concurrent.", show_default=False)
    ],
    value: Annotated[str, typer.Argument(help="true/false, or a number.", show_default=False)],
    json_out: JsonFlag = False,
) -> None:
    """Change a setting of the queue."""
    with connect(ctx) as client:
        settings = client.set_queue_setting(key, value)
    _print_settings(ctx, settings, json_out)


@app.command("add")
def add(ctx: typer.Context, task_id: TaskId, json_out: JsonFlag = False) -> None:
    """Queue a task."""
    with connect(ctx) as client:
        item = client.queue_add(task_id)
    if wants_json(ctx, json_out):
        print_json(item)
    else:
        console.print(f"queued {escape(item.task_id)} at position {item.position}")


@app.command("rm")
def remove(ctx: typer.Context, task_id: TaskId, json_out: JsonFlag = False) -> None:
    """Take a waiting task out of the queue."""
    with connect(ctx) as client:
        status = client.queue_remove(task_id)
    if wants_json(ctx, json_out):
        print_json(status)
    else:
        console.print(f"removed {escape(task_id)} from the queue")


@app.command("clear")
def clear(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Remove the ended (completed and failed) entries."""
    with connect(ctx) as client:
        cleared = client.queue_clear()
    if wants_json(ctx, json_out):
        print_json(cleared)
    else:
        console.print(f"removed {cleared.removed} ended entries")
