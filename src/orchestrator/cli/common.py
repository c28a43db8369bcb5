"""What every client command of the CLI shares: the global options, the client, JSON output, exit codes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Column, Table

from orchestrator.client import (
    Client,
    ConnectionFailed,
    OrchestratorError,
    ServerError,
    UnexpectedResponse,
)

# Exit codes scripts can rely on.
EXIT_OK = 0
EXIT_FAILED = 1  # the operation failed, or the server refused it (4xx)
EXIT_USAGE = 2  # a wrong command line (Typer's own)
EXIT_UNREACHABLE = 3  # the server could not be reached, or failed (5xx)

# Piped output is not squeezed into 80 columns: scripts and files get whole table rows.
console = Console(
    highlight=False,
    emoji=False,
    width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the answer as JSON and nothing else.")]


@dataclass
class Options:
    url: str | None = None
    token: str | None = None
    json: bool = False


def options(ctx: typer.Context) -> Options:
    found = ctx.find_root().obj
    return found if isinstance(found, Options) else Options()


def wants_json(ctx: typer.Context, flag: bool) -> bool:
    return flag or options(ctx).json


def exit_code(exc: OrchestratorError) -> int:
    if isinstance(exc, ConnectionFailed | ServerError | UnexpectedResponse):
        return EXIT_UNREACHABLE
    return EXIT_FAILED


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """One line on stderr, then the exit code."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


@contextmanager
def connect(ctx: typer.Context) -> Iterator[Client]:
    """A client for the server of the global options; the server's errors end the command."""
    opts = options(ctx)
    try:
        client = Client(opts.url, token=opts.token)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--url") from None
    try:
        with client:
            yield client
    except OrchestratorError as exc:
        fail(exc.detail, exit_code(exc))


def print_json(value: BaseModel | list[BaseModel] | dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    elif isinstance(value, list):
        text = json.dumps([v.model_dump(mode="json") for v in value], indent=2, ensure_ascii=False)
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False)
    sys.stdout.write(text + "\n")


STATUS_STYLE = {
    "starting": "cyan",
    "running": "cyan",
    "queued": "cyan",
    "pending": "",
    "assigned": "cyan",
    "in_progress": "cyan",
    "processing": "cyan",
    "completed": "green",
    "failed": "red",
    "timeout": "red",
    "killed": "yellow",
}


def status_markup(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def table(*headers: str | Column, wrap: tuple[str, ...] = ()) -> Table:
    """A borderless table whose columns do not wrap, except those named in `wrap`."""
    result = Table(*headers, box=None)
    for column in result.columns:
        column.no_wrap = column.header not in wrap
    return result


def id_column(ids: Iterable[str], header: str = "ID") -> Column:
    """A column that never cuts an id: scripts and people copy them."""
    return Column(header, no_wrap=True, min_width=max([len(header), *(len(i) for i in ids)]))


def when(timestamp: str | None, *, short: bool = False) -> str:
    """A stored UTC timestamp in local time (`short`: without the year)."""
    if not timestamp:
        return "-"
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    return moment.astimezone().strftime("%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S")


def duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def money(usd: float | None) -> str:
    return "-" if usd is None else f"${usd:.4f}"


def dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)
