"""The service's own directories: created, or tightened when they exist, so that only its user can enter."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.settings import Settings

PRIVATE_DIR_MODE = 0o700


def private_dirs(settings: Settings) -> tuple[Path, ...]:
    return (
        settings.data_dir,
        settings.resolved_runs_dir,
        settings.resolved_workspaces_dir,
        settings.resolved_event_dir,
    )


def prepare(settings: Settings) -> None:
    """Each directory made 0700; one that belongs to another user (a mounted volume) is left as it is."""
    for directory in private_dirs(settings):
        directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        if directory.stat().st_uid == os.geteuid():
            os.chmod(directory, PRIVATE_DIR_MODE)
