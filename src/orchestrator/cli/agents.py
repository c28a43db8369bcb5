"""`orchestrator agents ...`: list, inspect, follow, spawn, kill and retry agents."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    JsonFlag,
    connect,
    console,
    dash,
    duration,
    id_column,
    money,
    print_json,
    status_markup,
    table,
    wants_json,
    when,
)
from orchestrator.cli.render import Renderer, ending, raw_text
from orchestrator.client import Client, LogEnd
from orchestrator.domain.types import AgentStatus, AgentType
from orchestrator.models import Agent, AgentDetail

app = typer.Typer(help="Agents: list, show, follow logs, spawn, kill, retry.", no_args_is_help=True)

AgentId = Annotated[str, typer.Argument(help="The agent's id, e.g. coding-1a2b3c4d.", show_default=False)]
Follow = Annotated[bool, typer.Option("--follow", "-f", help="Follow the log live until the agent ends.")]


def _took(agent: Agent) -> str:
    return duration(agent.duration_ms) if agent.duration_ms is not None else "-"


@app.command("ls")
def list_agents(
    ctx: typer.Context,
    status: Annotated[AgentStatus | None, typer.Option(help="Only agents in this status.")] = None,
    agent_type: Annotated[AgentType | None, typer.Option("--type", help="Only agents of this type.")] = None,
    task: Annotated[str | None, typer.Option(help="Only the agents of this task.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json_out: JsonFlag = False,
) -> None:
    """List agents, newest first."""
    with connect(ctx) as client:
        page = client.list_agents(
            status=status, agent_type=agent_type, task_id=task, limit=limit, offset=offset
        )
    if wants_json(ctx, json_out):
        print_json(page)
        return
    ids = id_column(a.id for a in page.items)
    rows = table(ids, "TYPE", "STATUS", "TASK", "CREATED", "TOOK", "COST", "TURNS", wrap=("TASK",))
    for a in page.items:
        rows.add_row(
            a.id,
            a.agent_type.value,
            status_markup(a.status.value),
            escape(dash(a.task_id)),
            when(a.created_at, short=True),
            _took(a),
            money(a.cost_usd),
            dash(a.num_turns),
        )
    console.print(rows)
    shown = f"{offset + 1}-{offset + len(page.items)}" if page.items else "none"
    console.print(f"[dim]{shown} of {page.total}[/]")


def _show(agent: AgentDetail) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, str]] = [
        ("id", agent.id),
        ("type", agent.agent_type.value),
        ("status", status_markup(agent.status.value)),
        ("task", escape(dash(agent.task_id))),
        ("repo", escape(dash(agent.repo))),
        ("model", escape(dash(agent.model or agent.metadata.get("model")))),
        ("runtime", f"{agent.runtime} {dash(agent.container_id)} on {dash(agent.instance_id)}"),
        ("created", when(agent.created_at)),
        ("started", when(agent.started_at)),
        ("ended", when(agent.completed_at)),
        ("took", _took(agent)),
        ("exit code", dash(agent.exit_code)),
        ("cost", money(agent.cost_usd)),
        ("tokens", f"{dash(agent.input_tokens)} in, {dash(agent.output_tokens)} out"),
        ("turns", f"{dash(agent.num_turns)} of at most {agent.max_turns}"),
        ("timeout", f"{agent.timeout_seconds:g} s"),
        ("log lines", str(agent.log_lines)),
        ("workspace", escape(dash(agent.workspace))),
    ]
    if agent.retry_of:
        rows.append(("retry of", agent.retry_of))
    if agent.error:
        rows.append(("error", f"[red]{escape(agent.error)}[/]"))
    result = agent.metadata.get("result")
    if isinstance(result, str) and result:
        rows.append(("result", escape(result)))
    prompt = agent.prompt.strip().splitlines()
    shown = "\n".join(prompt[:12]) + (f"\n… ({len(prompt) - 12} more lines)" if len(prompt) > 12 else "")
    rows.append(("prompt", escape(shown)))
    for key, value in rows:
        grid.add_row(key, value)
    console.print(grid)


@app.command("show")
def show(ctx: typer.Context, agent_id: AgentId, json_out: JsonFlag = False) -> None:
    """An agent in detail: status, timing, cost, result, prompt."""
    with connect(ctx) as client:
        agent = client.get_agent(agent_id)
    if wants_json(ctx, json_out):
        print_json(agent)
    else:
        _show(agent)


def follow(client: Client, agent_id: str, *, after: int, as_json: bool, raw: bool) -> int:
    """Prints the log live until the agent ends; the exit code says how it ended."""
    renderer = Renderer()
    for event in client.stream_logs(agent_id, after=after):
        if isinstance(event, LogEnd):
            if as_json:
                sys.stdout.write(
                    json.dumps({"event": "end", "agent": event.agent.model_dump(mode="json")}) + "\n"
                )
            else:
                console.print(ending(event.agent), soft_wrap=True)
            return EXIT_OK if event.agent.status == AgentStatus.COMPLETED else EXIT_FAILED
        if as_json:
            sys.stdout.write(json.dumps({"event": "log", **event.model_dump(mode="json")}) + "\n")
            sys.stdout.flush()
        elif raw:
            console.print(raw_text(event), soft_wrap=True)
        else:
            for text in renderer.line(event):
                console.print(text, soft_wrap=True)
    return EXIT_FAILED  # not reached: the stream ends with an end event or an error


@app.command("logs")
def logs(
    ctx: typer.Context,
    agent_id: AgentId,
    follow_: Follow = False,
    after: Annotated[int, typer.Option(min=0, help="Only lines with a higher id.")] = 0,
    raw: Annotated[
        bool, typer.Option("--raw", help="The lines as the agent printed them, not rendered.")
    ] = False,
    json_out: Annotated[
        bool,
        typer.Option("--json", help="The lines as JSON: one object; with -f one per line, then the end."),
    ] = False,
) -> None:
    """An agent's log. With -f, live until it ends: exit 0 if it completed, 1 if not."""
    as_json = wants_json(ctx, json_out)
    with connect(ctx) as client:
        if follow_:
            raise typer.Exit(follow(client, agent_id, after=after, as_json=as_json, raw=raw))
        page = client.agent_logs(agent_id, after=after, limit=5000)
        items = page.items
        while page.has_more:
            page = client.agent_logs(agent_id, after=page.next_after, limit=5000)
            items += page.items
    if as_json:
        print_json(page.model_copy(update={"items": items}))
        return
    renderer = Renderer()
    for item in items:
        if raw:
            console.print(raw_text(item), soft_wrap=True)
        else:
            for text in renderer.line(item):
                console.print(text, soft_wrap=True)


def _started(client: Client, agent: AgentDetail, as_json: bool, follow_: bool) -> None:
    if follow_:
        if not as_json:
            console.print(f"[dim]{agent.id} {agent.status.value}[/]")
        raise typer.Exit(follow(client, agent.id, after=0, as_json=as_json, raw=False))
    if as_json:
        print_json(agent)
    else:
        console.print(f"{agent.id} {status_markup(agent.status.value)}")


@app.command("spawn")
def spawn(
    ctx: typer.Context,
    agent_type: Annotated[AgentType, typer.Argument(help="The kind of agent.", show_default=False)],
    prompt: Annotated[
        str | None, typer.Argument(help="What to do; '-' reads it from stdin. Optional with --task.")
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="The task to work on (its prompt is built from it).")
    ] = None,
    repo: Annotated[str | None, typer.Option(help="The repository to work in.")] = None,
    model: Annotated[str | None, typer.Option(help="The model, else the service's default.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds before it is stopped.", min=1)] = None,
    max_turns: Annotated[int | None, typer.Option(min=1, help="At most this many model turns.")] = None,
    follow_: Follow = False,
    json_out: JsonFlag = False,
) -> None:
    """Start an agent; prints its id (with -f, follows its log to the end)."""
    if prompt == "-":
        prompt = sys.stdin.read()
    with connect(ctx) as client:
        agent = client.spawn_agent(
            agent_type,
            prompt,
            task_id=task,
            repo=repo,
            model=model,
            timeout_seconds=timeout,
            max_turns=max_turns,
        )
        _started(client, agent, wants_json(ctx, json_out), follow_)


@app.command("kill")
def kill(ctx: typer.Context, agent_id: AgentId, json_out: JsonFlag = False) -> None:
    """Stop a running agent (SIGTERM, then SIGKILL after the grace period)."""
    with connect(ctx) as client:
        agent = client.kill_agent(agent_id)
    if wants_json(ctx, json_out):
        print_json(agent)
    else:
        console.print(f"{agent.id} {status_markup(agent.status.value)}")


@app.command("retry")
def retry(
    ctx: typer.Context,
    agent_id: AgentId,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the ended agent's CLI session.")] = False,
    follow_: Follow = False,
    json_out: JsonFlag = False,
) -> None:
    """Start a new agent with the same type, task, prompt and workspace as an ended one."""
    with connect(ctx) as client:
        agent = client.retry_agent(agent_id, resume=resume)
        _started(client, agent, wants_json(ctx, json_out), follow_)


@app.command("stats")
def stats(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Counts by status and type, success rate, mean duration, cost and tokens."""
    with connect(ctx) as client:
        data = client.analytics()
    if wants_json(ctx, json_out):
        print_json(data)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rate = "-" if data.success_rate is None else f"{data.success_rate:.0%}"
    grid.add_row("agents", f"{data.total} ({data.running_here} running here)")
    grid.add_row("by status", ", ".join(f"{status_markup(k)} {v}" for k, v in data.by_status.items()) or "-")
    grid.add_row("by type", ", ".join(f"{k} {v}" for k, v in data.by_type.items()) or "-")
    grid.add_row("success rate", rate)
    grid.add_row("mean duration", duration(data.mean_duration_ms))
    grid.add_row("cost", money(data.total_cost_usd))
    grid.add_row("tokens", f"{data.total_input_tokens} in, {data.total_output_tokens} out")
    console.print(grid)
