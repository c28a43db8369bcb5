"""Labelled issues of GITHUB_INTAKE_REPOS become queued tasks, once per issue whichever way they arrive
(polling or the `issues` webhook); an issue closed or unlabelled cancels its task if it has not started;
the issue gets a comment when its task's PR opens and when the task ends.

An issue's text is untrusted: it becomes the task's title and description (capped), nothing else: the
repository comes from the configured list, and no setting, priority or budget is read from it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from orchestrator.domain import issue_comments as text
from orchestrator.domain.github_news import IssueNews
from orchestrator.domain.types import TaskStatus
from orchestrator.errors import Conflict, NotFound
from orchestrator.forge.errors import ForgeError, RateLimited
from orchestrator.forge.issues import Issues
from orchestrator.models import TaskCreate
from orchestrator.store.github_intake import IntakeStore, IssueTask
from orchestrator.store.tasks import TaskStore
from orchestrator.tasks.queue_control import QueueControl
from orchestrator.tasks.service import TaskService

log = logging.getLogger(__name__)

REPORT_SECONDS = 2.0
_NOT_STARTED = (TaskStatus.PENDING, TaskStatus.QUEUED)


class IssueIntake:
    def __init__(
        self,
        *,
        label: str | None,
        repos: list[str],
        poll_seconds: float,
        store: IntakeStore,
        tasks: TaskStore,
        queue: QueueControl,
        issues: Issues,
        redact: Callable[[str], str],
    ) -> None:
        self._label = label
        self._repos = {r.lower(): r for r in repos}
        self._poll_seconds = poll_seconds
        self._store = store
        self._tasks = tasks
        self._task_service = TaskService(tasks)
        self._queue = queue
        self._issues = issues
        self._redact = redact
        self._lock = threading.Lock()
        self._next_poll = 0.0
        self.polls = 0

    @property
    def enabled(self) -> bool:
        return bool(self._label and self._repos)

    def _repo(self, repo: str) -> str | None:
        return self._repos.get(repo.lower())

    def take(self, issue: IssueNews) -> str:
        """What the issue's state means for its task; a description of what was done."""
        repo = self._repo(issue.repo)
        if not self.enabled or repo is None:
            return f"{issue.repo} is not an intake repository: ignored"
        if issue.is_pull_request:
            return "a pull request, not an issue: ignored"
        with self._lock:
            if issue.open and self._label in issue.labels:
                return self._open(repo, issue)
            known = self._store.issue_task(repo, issue.number)
            return self._cancel(known) if known is not None else "not a task: nothing to do"

    def recheck(self, repo: str, number: int) -> str:
        """News of an issue from a webhook: the issue is read from GitHub's API and acted on as read (a
        delivery's own words, even signed, may be old: a captured one replayed under a new delivery id)."""
        configured = self._repo(repo)
        if not self.enabled or configured is None:
            return f"{repo} is not an intake repository: ignored"
        return self.take(self._issues.get(configured, number))

    def _open(self, repo: str, issue: IssueNews) -> str:
        known = self._store.issue_task(repo, issue.number)
        if known is not None:
            return f"already task {known.task_id}"
        task_id = text.issue_task_id(repo, issue.number)
        row = self._tasks.get(task_id)
        if row is not None and str(row["repo"] or "").lower() != repo.lower():
            # another repository's task (its name reads alike in an id): never linked to this issue, whose
            # closing would cancel it
            task_id = text.distinct_issue_task_id(repo, issue.number)
            row = self._tasks.get(task_id)
        if row is None:
            try:
                row = self._task_service.create(
                    TaskCreate(
                        id=task_id,
                        title=issue.title,
                        description=text.task_description(repo, issue.number, issue.body),
                        repo=repo,
                    )
                )
            except Conflict:  # made by another instance a moment ago
                row = self._tasks.get(task_id)
        self._store.link(repo, issue.number, task_id)
        if row is not None and row["status"] == TaskStatus.PENDING:
            with contextlib.suppress(Conflict, NotFound):  # queued by another instance a moment ago
                self._queue.add(task_id)
        log.info("issue %s#%s became task %s", repo, issue.number, task_id)
        return f"queued as task {task_id}"

    def _cancel(self, known: IssueTask) -> str:
        row = self._tasks.get(known.task_id)
        if row is None or row["status"] not in _NOT_STARTED:
            return f"task {known.task_id} is {row['status'] if row else 'gone'}: left as it is"
        if row["status"] == TaskStatus.QUEUED:
            try:
                self._queue.remove(known.task_id)
            except Conflict:
                return f"task {known.task_id} has started: left as it is"
            except NotFound:
                pass
        reason = f"cancelled: issue {known.repo}#{known.number} was closed or lost its label"
        if not self._tasks.move(known.task_id, TaskStatus.FAILED, error=reason):
            return f"task {known.task_id} moved on meanwhile: left as it is"
        self._store.claim_comment(known.repo, known.number, "end")  # the issue's own change: no comment
        log.info("task %s %s", known.task_id, reason)
        return f"task {known.task_id} {reason}"

    def poll(self) -> None:
        """Every intake repository's open labelled issues (a conditional GET: 304 when unchanged)."""
        if not self.enabled or time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + self._poll_seconds
        self.polls += 1
        assert self._label is not None
        for repo in self._repos.values():
            try:
                listing = self._issues.labelled(repo, self._label)
            except RateLimited as exc:
                self._next_poll = time.monotonic() + max(self._poll_seconds, exc.retry_after or 60.0)
                log.warning("issue intake waits for GitHub's rate limit: %s", exc)
                return
            except ForgeError as exc:
                log.warning("issue intake could not list the issues of %s: %s", repo, exc)
                continue
            if not listing.changed:
                continue
            for issue in listing.issues:
                self.take(issue)
            if listing.complete:
                still = {issue.number for issue in listing.issues}
                for known in self._store.issues_of(repo):
                    if known.number not in still:
                        with self._lock:
                            self._cancel(known)

    def report(self) -> int:
        """Comments on issues whose task opened its PR or ended; the number posted."""
        posted = 0
        for news in self._store.unreported():
            if not self._store.claim_comment(news.repo, news.number, news.kind):
                continue
            if news.kind == "pr":
                body = text.pr_opened(news.task_id, news.pr_url or "")
            else:
                body = text.task_ended(news.task_id, news.status, news.pr_url, news.error, news.cost_usd)
            try:
                self._issues.comment(news.repo, news.number, self._redact(body))
            except ForgeError as exc:
                self._store.release_comment(news.repo, news.number, news.kind)
                log.warning("could not comment on issue %s#%s: %s", news.repo, news.number, exc)
                continue
            posted += 1
        return posted

    async def run(self) -> None:
        if not self.enabled:
            return
        while True:
            await asyncio.to_thread(self.poll)
            await asyncio.to_thread(self.report)
            await asyncio.sleep(min(self._poll_seconds, REPORT_SECONDS))
