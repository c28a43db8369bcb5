"""Inbound GitHub news: the deliveries taken (a redelivery is recognised by its X-GitHub-Delivery id), the
task made from each issue, and the comments posted on the issue about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import and_, func, insert, or_, select, update

from orchestrator.clock import utc_now
from orchestrator.domain.types import TaskStatus
from orchestrator.store.db import Database, StoreError
from orchestrator.store.tables import agents, github_deliveries, github_issues, tasks

CommentKind = Literal["pr", "end"]
_ENDED = (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value)


@dataclass(frozen=True)
class IssueTask:
    repo: str
    number: int
    task_id: str


@dataclass(frozen=True)
class Unreported:
    """An issue's task with news the issue has not been told: its PR opened, or it ended."""

    repo: str
    number: int
    task_id: str
    kind: CommentKind
    status: str
    pr_url: str | None
    error: str | None
    cost_usd: float


class IntakeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def take_delivery(self, delivery_id: str, event: str) -> bool:
        """True the first time a delivery id is seen; False for a redelivery."""
        if self._seen(delivery_id):
            return False
        try:
            with self._db.write() as conn:
                conn.execute(
                    insert(github_deliveries).values(
                        delivery_id=delivery_id, event=event, received_at=utc_now()
                    )
                )
        except StoreError:
            # the same delivery taken at the same moment by another request; any other failure (a locked or
            # full database) is no redelivery: GitHub must hear of it and deliver again
            if not self._seen(delivery_id):
                raise
            return False
        return True

    def _seen(self, delivery_id: str) -> bool:
        with self._db.read() as conn:
            return (
                conn.execute(
                    select(github_deliveries.c.delivery_id).where(
                        github_deliveries.c.delivery_id == delivery_id
                    )
                ).first()
                is not None
            )

    def forget_delivery(self, delivery_id: str) -> None:
        """After a delivery could not be acted on, so that GitHub's redelivery is."""
        with self._db.write() as conn:
            conn.execute(github_deliveries.delete().where(github_deliveries.c.delivery_id == delivery_id))

    def prune_deliveries(self, received_before: str) -> int:
        """Forgets the deliveries received before that time (ISO-8601 UTC): a redelivery of one is new
        again. The number forgotten."""
        with self._db.write() as conn:
            return int(
                conn.execute(
                    github_deliveries.delete().where(github_deliveries.c.received_at < received_before)
                ).rowcount
            )

    def deliveries(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(github_deliveries)).scalar_one())

    def issue_task(self, repo: str, number: int) -> IssueTask | None:
        with self._db.read() as conn:
            row = conn.execute(
                select(github_issues.c.task_id).where(
                    github_issues.c.repo == repo, github_issues.c.number == number
                )
            ).first()
        return IssueTask(repo, number, row.task_id) if row is not None else None

    def link(self, repo: str, number: int, task_id: str) -> bool:
        """Records the issue's task; False when the issue has one already."""
        if self.issue_task(repo, number) is not None:
            return False
        try:
            with self._db.write() as conn:
                conn.execute(
                    insert(github_issues).values(
                        repo=repo, number=number, task_id=task_id, created_at=utc_now()
                    )
                )
        except StoreError:
            return False
        return True

    def issues_of(self, repo: str) -> list[IssueTask]:
        with self._db.read() as conn:
            rows = conn.execute(
                select(github_issues.c.number, github_issues.c.task_id).where(github_issues.c.repo == repo)
            ).all()
        return [IssueTask(repo, r.number, r.task_id) for r in rows]

    def unreported(self, limit: int = 50) -> list[Unreported]:
        cost = (
            select(func.coalesce(func.sum(agents.c.cost_usd), 0.0))
            .where(agents.c.task_id == github_issues.c.task_id)
            .scalar_subquery()
        )
        query = (
            select(github_issues, tasks.c.status, tasks.c.pr_url, tasks.c.error, cost.label("cost"))
            .join(tasks, tasks.c.id == github_issues.c.task_id)
            .where(
                github_issues.c.end_commented_at.is_(None),
                or_(
                    tasks.c.status.in_(_ENDED),
                    and_(tasks.c.pr_url.is_not(None), github_issues.c.pr_commented_at.is_(None)),
                ),
            )
            .limit(limit)
        )
        with self._db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            Unreported(
                repo=r["repo"],
                number=r["number"],
                task_id=r["task_id"],
                kind="end" if r["status"] in _ENDED else "pr",
                status=r["status"],
                pr_url=r["pr_url"],
                error=r["error"],
                cost_usd=float(r["cost"] or 0.0),
            )
            for r in rows
        ]

    def claim_comment(self, repo: str, number: int, kind: CommentKind) -> bool:
        """Marks the comment posted, once across instances: True for the one caller that gets to post it
        (the end comment also stands for a PR comment not yet made)."""
        column = github_issues.c.end_commented_at if kind == "end" else github_issues.c.pr_commented_at
        values = {"end_commented_at": utc_now()} if kind == "end" else {"pr_commented_at": utc_now()}
        with self._db.write() as conn:
            done = conn.execute(
                update(github_issues)
                .where(github_issues.c.repo == repo, github_issues.c.number == number, column.is_(None))
                .values(**values)
            )
            return bool(done.rowcount)

    def release_comment(self, repo: str, number: int, kind: CommentKind) -> None:
        """A claimed comment that could not be posted: the next round tries again."""
        values = {"end_commented_at": None} if kind == "end" else {"pr_commented_at": None}
        with self._db.write() as conn:
            conn.execute(
                update(github_issues)
                .where(github_issues.c.repo == repo, github_issues.c.number == number)
                .values(**values)
            )
