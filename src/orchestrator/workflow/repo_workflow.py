"""A task's copy of its repository's `.orchestrator/workflow.toml`, taken when the task starts: from the
default branch in the service's mirror, or from HEAD of a repository under PROJECTS_DIR, read as git data
(never from an agent's checkout, never checked out), and kept under the data directory so that a change
on the default branch applies only to tasks that start after it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from orchestrator.agents.workspace import project_of
from orchestrator.domain import workflow_file as wf
from orchestrator.forge.git import git_env, rev_parse
from orchestrator.forge.mirror import read_blob_at
from orchestrator.forge.sources import ForgeRepos
from orchestrator.settings import Settings


def _copy_path(settings: Settings, task_id: str) -> Path:
    digest = hashlib.sha256(task_id.encode()).hexdigest()[:32]
    return settings.data_dir / "workflow-files" / f"{digest}.toml"


def read_repository_file(settings: Settings, repo: str) -> bytes | None:
    """The file's bytes (at most the cap and one byte more), None when the repository has none."""
    cap = wf.WORKFLOW_FILE_CAP + 1
    project = project_of(settings.resolved_projects_dir, repo)
    if project is not None:
        commit = rev_parse(project, "HEAD")
        return None if commit is None else read_blob_at(project, commit, wf.WORKFLOW_FILE, cap, git_env())
    return ForgeRepos.of(settings).read_default_file(repo, wf.WORKFLOW_FILE, cap)


def take(settings: Settings, task_id: str, repo: str | None) -> wf.WorkflowFile:
    """At the task's start: the repository's file, checked, kept as the task's copy (an empty copy when
    there is none); WorkflowFileError, and no copy, when it cannot be used."""
    data = read_repository_file(settings, repo) if repo else None
    text = _decoded(data or b"")
    workflow = wf.parse(text)
    path = _copy_path(settings, task_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    return workflow


def taken(settings: Settings, task_id: str) -> bool:
    return _copy_path(settings, task_id).is_file()


def of_task(settings: Settings, task_id: str) -> wf.WorkflowFile:
    """The task's copy (the defaults when none was taken: a task that started before this was read)."""
    path = _copy_path(settings, task_id)
    if not path.is_file():
        return wf.DEFAULT
    return wf.parse(_decoded(path.read_bytes()))


def text_of(settings: Settings, task_id: str) -> str:
    """The task's copy as text (empty when none was taken)."""
    path = _copy_path(settings, task_id)
    return _decoded(path.read_bytes()) if path.is_file() else ""


def _decoded(data: bytes) -> str:
    if len(data) > wf.WORKFLOW_FILE_CAP:
        raise wf.WorkflowFileError(f"{wf.WORKFLOW_FILE}: larger than {wf.WORKFLOW_FILE_CAP} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise wf.WorkflowFileError(f"{wf.WORKFLOW_FILE}, line {line}: not UTF-8 text") from None


def forget(settings: Settings, task_id: str) -> None:
    """The task ended: its copy goes."""
    _copy_path(settings, task_id).unlink(missing_ok=True)
