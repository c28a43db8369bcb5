"""The `orchestrator` program: `serve` starts the service without loading the command line's libraries;
every other command line goes to the Typer CLI (orchestrator.cli.main)."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    from orchestrator.serving import plain_serve, serve

    kill_agents_on_shutdown = plain_serve(sys.argv[1:])
    if kill_agents_on_shutdown is not None:
        serve(kill_agents_on_shutdown=kill_agents_on_shutdown)
        return
    from orchestrator.cli.main import main as cli_main

    cli_main()
