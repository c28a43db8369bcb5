"""What the dashboard's task page reads beyond the task itself: its timeline and its branch's diff."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TimelineAgent(BaseModel):
    id: str
    agent_type: str
    status: str
    round: int = Field(description="1 for the first agent of its type in the task, 2 for the next...")
    start: str
    end: str | None
    cost_usd: float | None
    input_tokens: int | None
    output_tokens: int | None
    num_turns: int | None
    end_reason: str | None
    error: str | None
    flags: list[str] = Field(description="stalled, looping, and ends such as budget_exceeded, rate_limited")


class TimelineWait(BaseModel):
    kind: str = Field(description="checks | mergeable | approval:merge | approval:deploy")
    start: str
    end: str | None = Field(description="null while the task still waits")
    outcome: str | None = Field(description="the type of the event that ended the wait")


class TaskTimeline(BaseModel):
    task_id: str
    status: str
    created_at: str
    now: str
    agents: list[TimelineAgent]
    waits: list[TimelineWait]
    cost_usd: float
    input_tokens: int
    output_tokens: int


class DiffFile(BaseModel):
    path: str
    binary: bool
    additions: int | None
    deletions: int | None
    patch: str = Field(description="git's unified diff of this file (empty for a binary file)")
    truncated: bool = False


class DiffPage(BaseModel):
    task_id: str
    branch: str
    base: str = Field(description="the commit the branch is compared against (the merge base's side)")
    head: str
    page: int
    pages: int
    files_total: int
    files: list[DiffFile]
    truncated: bool = Field(False, description="true when git said more than the service reads")
