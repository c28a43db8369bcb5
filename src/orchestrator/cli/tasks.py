"""`orchestrator tasks ...`: add, list, show and remove tasks."""

from __future__ import annotations

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
    money,
    print_json,
    status_markup,
    table,
    wants_json,
    when,
)
from orchestrator.domain.types import TaskStatus
from orchestrator.models import TaskDetail

app = typer.Typer(help="Tasks: add, list, show, remove, approve, reject.", no_args_is_help=True)

TaskId = Annotated[str, typer.Argument(help="The task's id.", show_default=False)]


@app.command("add")
def add(
    ctx: typer.Context,
    title: Annotated[str, typer.Argument(help="What the task is, in a line.", show_default=False)],
    description: Annotated[str | None, typer.Option("--description", "-d", help="The details.")] = None,
    repo: Annotated[
        list[str] | None, typer.Option(help="A repository it touches (repeat for several; first is main).")
    ] = None,
    priority: Annotated[int | None, typer.Option(help="Higher runs first.")] = None,
    task_id: Annotated[str | None, typer.Option("--id", help="Its id, else one is made up.")] = None,
    queue: Annotated[bool, typer.Option("--queue", "-q", help="Also add it to the queue.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Create a task (and with --queue, queue it); prints its id."""
    with connect(ctx) as client:
        task = client.create_task(
            title, task_id=task_id, description=description, repos=repo or None, priority=priority
        )
        item = client.queue_add(task.id) if queue else None
    if wants_json(ctx, json_out):
        print_json(
            task
            if item is None
            else {"task": task.model_dump(mode="json"), "queued": item.model_dump(mode="json")}
        )
        return
    console.print(f"{escape(task.id)} {status_markup(task.status.value)}" + (" (queued)" if item else ""))


@app.command("ls")
def list_tasks(
    ctx: typer.Context,
    status: Annotated[TaskStatus | None, typer.Option(help="Only tasks in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json_out: JsonFlag = False,
) -> None:
    """List tasks."""
    with connect(ctx) as client:
        page = client.list_tasks(status=status, limit=limit, offset=offset)
    if wants_json(ctx, json_out):
        print_json(page)
        return
    ids = id_column(t.id for t in page.items)
    agents = id_column((dash(t.assigned_agent_id) for t in page.items), "AGENT")
    rows = table(ids, "STATUS", "PRI", "TITLE", "REPO", agents, "UPDATED", wrap=("TITLE", "REPO"))
    for t in page.items:
        rows.add_row(
            escape(t.id),
            status_markup(t.status.value),
            str(t.priority),
            escape(t.title),
            escape(", ".join(t.repos) or "-"),
            dash(t.assigned_agent_id),
            when(t.updated_at, short=True),
        )
    console.print(rows)
    shown = f"{offset + 1}-{offset + len(page.items)}" if page.items else "none"
    console.print(f"[dim]{shown} of {page.total}[/]")


def _show(task: TaskDetail) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("id", escape(task.id))
    grid.add_row("title", escape(task.title))
    grid.add_row("status", status_markup(task.status.value))
    grid.add_row("priority", str(task.priority))
    grid.add_row("repos", escape(", ".join(task.repos) or "-"))
    for label, value in (
        ("branch", task.branch),
        ("pull request", task.pr_url),
        ("parent", task.parent_task_id),
        ("waiting for", task.waiting_for),
    ):
        if value:
            grid.add_row(label, escape(value))
    if task.error:
        grid.add_row("error", f"[red]{escape(task.error)}[/]")
    grid.add_row("created", when(task.created_at))
    grid.add_row("updated", when(task.updated_at))
    if task.description:
        grid.add_row("description", escape(task.description.strip()))
    console.print(grid)
    if task.agents:
        agents = Table(
            "AGENT", "TYPE", "STATUS", "COST", "CREATED", title="agents", box=None, title_justify="left"
        )
        for a in task.agents:
            agents.add_row(
                a.id, a.agent_type.value, status_markup(a.status.value), money(a.cost_usd), when(a.created_at)
            )
        console.print(agents)
    if task.queue:
        queue = Table("QUEUED", "STATUS", "AGENT", "ERROR", title="queue", box=None, title_justify="left")
        for q in task.queue:
            queue.add_row(
                when(q.queued_at), status_markup(q.status.value), dash(q.agent_id), escape(dash(q.error))
            )
        console.print(queue)


@app.command("show")
def show(ctx: typer.Context, task_id: TaskId, json_out: JsonFlag = False) -> None:
    """A task with its agents and queue history."""
    with connect(ctx) as client:
        task = client.get_task(task_id)
    if wants_json(ctx, json_out):
        print_json(task)
    else:
        _show(task)


@app.command("rm")
def remove(ctx: typer.Context, task_id: TaskId, json_out: JsonFlag = False) -> None:
    """Delete a task (refused while an agent works on it)."""
    with connect(ctx) as client:
        client.delete_task(task_id)
    if wants_json(ctx, json_out):
        print_json({"id": task_id, "deleted": True})
    else:
        console.print(f"deleted {escape(task_id)}")


@app.command("approve")
def approve(ctx: typer.Context, task_id: TaskId, json_out: JsonFlag = False) -> None:
    """Let a task waiting at an approval gate (REQUIRE_APPROVAL) go on."""
    with connect(ctx) as client:
        task = client.approve_task(task_id)
    if wants_json(ctx, json_out):
        print_json(task)
    else:
        console.print(f"approved {escape(task_id)} at {escape(task.waiting_for or '-')}")


@app.command("reject")
def reject(
    ctx: typer.Context,
    task_id: TaskId,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why: kept as the task's error.")],
    json_out: JsonFlag = False,
) -> None:
    """End a task waiting at an approval gate, failed with the reason."""
    with connect(ctx) as client:
        task = client.reject_task(task_id, reason)
    if wants_json(ctx, json_out):
        print_json(task)
    else:
        console.print(f"rejected {escape(task_id)} at {escape(task.waiting_for or '-')}")
