"""The PR watcher: reads from GitHub the state of each task's pull request while the task waits on it
(checks of the head commit, people's reviews, mergeability, a person merging or closing it) and writes
each new fact as one event. Polls every GITHUB_POLL_SECONDS, and at once when poked (by the workflow when a
wait begins, by GitHub's webhooks). An event's id is derived from the fact, so the same news read twice
(by a webhook's poke and by a poll, or by two instances) reacts once; the workflow drops a fact about a
wait the task has left (`waited_for`/`head_sha` in the payload)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from orchestrator.domain import pr_loop as pl
from orchestrator.domain.events import EventType
from orchestrator.forge.errors import ForgeError
from orchestrator.forge.github import GitHubClient
from orchestrator.forge.pull_state import PullState
from orchestrator.settings import Settings
from orchestrator.store.events import EventStore
from orchestrator.store.tasks import TaskRow, TaskStore

log = logging.getLogger(__name__)

WATCHED = (pl.Waiting.CHECKS.value, pl.Waiting.MERGEABLE.value)


def _since(stamp: str | None, now: float) -> float:
    if not stamp:
        return 0.0
    try:
        return max(now - datetime.fromisoformat(stamp).timestamp(), 0.0)
    except ValueError:
        return 0.0


class PRWatcher:
    def __init__(
        self,
        settings: Settings,
        tasks: TaskStore,
        events: EventStore,
        forge: GitHubClient,
        wake: Callable[[], None],
        clock: Callable[[], float] = time.time,
        pushed: Callable[[str, str, str], bool] | None = None,
    ) -> None:
        self._settings = settings
        self._tasks = tasks
        self._events = events
        self._forge = forge
        self._state = PullState(forge)
        self._wake = wake
        self._clock = clock
        # (repo, branch, sha): whether the service pushed that commit of the branch (its mirror says)
        self._pushed = pushed or (lambda repo, branch, sha: False)
        self._poked = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sweeps = 0
        self._told: dict[str, tuple[str, str, str]] = {}  # task -> the wait a fact was written for

    def poke(self, repo: str, pr_number: int | None, head_sha: str | None) -> None:
        """News from GitHub about `repo` (a webhook's check_run, status, review, pull_request...): look now.
        The arguments only log; every waiting task is looked at, which is cheap and misses nothing."""
        log.debug("poked for %s #%s at %s", repo, pr_number, head_sha)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._poked.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            self._poked.clear()
            await asyncio.to_thread(self.sweep)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.github_poll_seconds):
                    await self._poked.wait()

    def sweep(self) -> int:
        """Looks at every waiting task once; the number of new events."""
        if not self._forge.configured:
            return 0
        new = 0
        waiting = self._tasks.waiting(WATCHED)
        self._told = {t["id"]: k for t in waiting if (k := self._told.get(t["id"])) is not None}
        for task in waiting:
            wait = (task["waiting_for"], task["head_sha"], task["waiting_since"])
            if self._told.get(task["id"]) == wait:
                continue  # one fact per wait: the workflow acts on it and starts the next wait
            try:
                told = self.look(task)
                new += told
                if told:
                    self._told[task["id"]] = wait
            except ForgeError as exc:
                log.warning("reading PR #%s of task %s: %s", task["pr_number"], task["id"], exc)
        self.sweeps += 1
        return new

    def look(self, task: TaskRow) -> int:
        repo, number, sha = task["repo"], task["pr_number"], task["head_sha"]
        waiting = task["waiting_for"]
        if not repo or not number or not sha:
            return 0
        waited = _since(task["waiting_since"], self._clock())
        base: dict[str, Any] = {"waited_for": waiting, "head_sha": sha}
        tid = task["id"]
        at = "".join(ch for ch in str(task["waiting_since"] or "") if ch.isdigit())
        pull = self._forge.get_pull(repo, number)
        if pull.merged or pull.state == "closed":
            fact = "merged" if pull.merged else "closed"
            return self._emit(
                pl.fact_id(tid, str(number), fact), EventType.PR_CLOSED, tid, merged=pull.merged, **base
            )
        head = pull.head.sha
        branch = task["branch"] or pull.head.ref
        moved = pl.is_sha(head) and head != sha  # checked before it reaches git
        if moved and pl.head_moved(sha, head, pushed_by_service=self._pushed(repo, branch, head)):
            return self._emit(
                pl.head_moved_id(tid, number, sha, head),
                EventType.PR_HEAD_MOVED,
                tid,
                new_head_sha=head,
                **base,
            )
        own = self._state.own_login()
        reviews, all_reviews = self._state.reviews_read(repo, number)
        changes = pl.outstanding_changes(reviews, own)
        comments = pl.people_comments(self._state.review_comments(repo, number), own)
        feedback = pl.new_feedback(changes, comments, *self._marks(tid))
        if feedback is not None:
            said = ["People reviewed the pull request: address what they ask for (quoted below)."]
            return self._emit(
                pl.fact_id(tid, "feedback", feedback.fact),
                EventType.PR_CHANGES_REQUESTED,
                tid,
                comments=said,
                reports=pl.feedback_reports(feedback.reviews, feedback.comments),
                review_mark=feedback.review_mark,
                comment_mark=feedback.comment_mark,
                **base,
            )
        if waiting == pl.Waiting.CHECKS:
            return self._checks(task, waited, base, at)
        step = pl.merge_step(
            state=pull.state,
            merged=pull.merged,
            mergeable=pull.mergeable,
            mergeable_state=pull.mergeable_state,
            people_block=bool(changes) or not all_reviews,
        )
        if step == pl.MergeStep.MERGE:
            return self._emit(pl.fact_id(tid, sha, at, "ready"), EventType.PR_READY, tid, **base)
        if step == pl.MergeStep.CONFLICT:
            said = [pl.conflict_said(pull.base.ref)]
            return self._emit(
                pl.fact_id(tid, sha, at, "conflict"),
                EventType.PR_CONFLICT,
                tid,
                comments=said,
                base=pull.base.ref,
                **base,
            )
        if waited >= self._settings.checks_timeout_seconds:
            why = "a person asked for changes" if changes else f"mergeable_state {pull.mergeable_state}"
            if not all_reviews and not changes:
                why = "more reviews than the service reads: a person's change request may be among them"
            reason = f"pull request #{number} did not become mergeable in {waited:.0f} s ({why})"
            return self._emit(
                pl.fact_id(tid, sha, at, "merge-timeout"),
                EventType.PR_WAIT_TIMED_OUT,
                tid,
                reason=reason,
                **base,
            )
        return 0

    def _checks(self, task: TaskRow, waited: float, base: dict[str, Any], at: str) -> int:
        repo, sha, tid = task["repo"], task["head_sha"], task["id"]
        verdict = pl.checks_verdict(self._state.check_runs(repo, sha), self._state.statuses(repo, sha))
        step = pl.checks_step(
            verdict,
            waited,
            appear_seconds=self._settings.checks_appear_seconds,
            timeout=self._settings.checks_timeout_seconds,
        )
        if step == pl.ChecksStep.PASSED:
            return self._emit(
                pl.fact_id(tid, sha, at, "checks", "passed"), EventType.PR_CHECKS_PASSED, tid, **base
            )
        if step == pl.ChecksStep.FAILED:
            said = ["CI checks failed on your last commit: make them pass (their reports are quoted below)."]
            return self._emit(
                pl.fact_id(tid, sha, at, "checks", "failed"),
                EventType.PR_CHECKS_FAILED,
                tid,
                comments=said,
                reports=pl.failure_reports(verdict.failures),
                failing=[f.name for f in verdict.failures],
                **base,
            )
        if step == pl.ChecksStep.TIMED_OUT:
            reason = f"checks of {sha[:12]} still pending after {waited:.0f} s (CHECKS_TIMEOUT_SECONDS)"
            return self._emit(
                pl.fact_id(tid, sha, at, "checks", "timeout"),
                EventType.PR_WAIT_TIMED_OUT,
                tid,
                reason=reason,
                **base,
            )
        return 0

    def _marks(self, task_id: str) -> tuple[int, int]:
        """The newest review and comment ids the task reacted to already (from its earlier events)."""
        rows, _ = self._events.page(
            statuses=None, type_=EventType.PR_CHANGES_REQUESTED.value, task_id=task_id, limit=500, offset=0
        )
        marks = [
            (int(r["payload"].get("review_mark") or 0), int(r["payload"].get("comment_mark") or 0))
            for r in rows
        ]
        return max((m[0] for m in marks), default=0), max((m[1] for m in marks), default=0)

    def _emit(self, event_id: str, type_: EventType, task_id: str, **payload: Any) -> int:
        _, created = self._events.create(event_id, type_.value, task_id, None, payload)
        if created:
            log.info("task %s: %s (%s)", task_id, type_.value, event_id)
            self._wake()
        return int(created)
