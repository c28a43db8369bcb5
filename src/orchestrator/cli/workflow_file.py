"""`orchestrator workflow check PATH`: a repository's `.orchestrator/workflow.toml` checked locally,
with the message a task would fail with."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.domain import workflow_file as wf

app = typer.Typer(help="A repository's workflow file (.orchestrator/workflow.toml).", no_args_is_help=True)


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="The workflow file to check.", show_default=False)],
) -> None:
    """Checks a workflow file the way the service does when a task starts; exit 1 on an error."""
    try:
        data = path.read_bytes()
        if len(data) > wf.WORKFLOW_FILE_CAP:
            raise wf.WorkflowFileError(f"{path}: larger than {wf.WORKFLOW_FILE_CAP} bytes")
        text = data.decode()
        wf.parse(text, source=str(path))
    except (OSError, UnicodeDecodeError, wf.WorkflowFileError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{path}: ok")
