"""`orchestrator profiles list|show|set|delete`: agent profiles, named settings over a base agent type."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.markup import escape

from orchestrator.cli.common import JsonFlag, connect, console, fail, print_json, table, wants_json, when

app = typer.Typer(help="Agent profiles: named settings over a base agent type.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The profile's name.", show_default=False)]


@app.command("list")
def list_profiles(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List the profiles."""
    with connect(ctx) as client:
        profiles = client.list_profiles()
    if wants_json(ctx, json_out):
        models: list[BaseModel] = list(profiles)
        print_json(models)
        return
    rows = table("NAME", "AGENT TYPE", "SETS", "UPDATED")
    for p in profiles:
        rows.add_row(escape(p.name), p.agent_type, escape(", ".join(sorted(p.settings))), when(p.updated_at))
    console.print(rows)


@app.command("show")
def show_profile(ctx: typer.Context, name: NameArg) -> None:
    """Show one profile as JSON."""
    with connect(ctx) as client:
        print_json(client.get_profile(name))


@app.command("set")
def set_profile(
    ctx: typer.Context,
    name: NameArg,
    path: Annotated[
        Path,
        typer.Argument(
            help="A TOML (or .json) file: agent_type, and the keys of [agents.<type>] in a workflow file.",
            show_default=False,
        ),
    ],
) -> None:
    """Create or replace a profile from a file."""
    try:
        text = path.read_text()
        data: dict[str, Any] = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        fail(f"{path}: {exc}")
    agent_type = data.pop("agent_type", None)
    if not isinstance(agent_type, str):
        fail(f"{path}: agent_type is missing (starter, coding, reviewer, deployer, verifier or auditor)")
    with connect(ctx) as client:
        profile = client.set_profile(name, agent_type, **data)
    if wants_json(ctx, False):
        print_json(profile)
        return
    console.print(f"profile [bold]{escape(profile.name)}[/] over {profile.agent_type} set")


@app.command("delete")
def delete_profile(ctx: typer.Context, name: NameArg) -> None:
    """Delete a profile."""
    with connect(ctx) as client:
        client.delete_profile(name)
    console.print(f"profile [bold]{escape(name)}[/] deleted")
