"""The `orchestrator` command: the service (`serve`) and the commands that talk to it."""

from orchestrator.cli.main import app

__all__ = ["app"]
