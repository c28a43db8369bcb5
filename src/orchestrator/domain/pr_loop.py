"""What a pull request's state on GitHub means for its task: the checks' verdict, a person's review, whether
it may merge, the approval gates, and the ids that make each fact react once. Pure: no I/O."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

SUMMARY_CAP = 2_000  # characters of one check's output summary in a fix-up prompt
REPORT_CAP = 12_000  # characters of all reports in a fix-up prompt
MAX_REPORTED = 20  # failing checks or comments named in one prompt

# Conclusions of a completed check run that do not block a merge (GitHub's own reading).
_PASSING = frozenset({"success", "neutral", "skipped"})
_FAILING_STATES = frozenset({"failure", "error"})


class Gate(StrEnum):
    MERGE = "merge"
    DEPLOY = "deploy"


class Waiting(StrEnum):
    """What a task waits for, as the task's `waiting_for` says."""

    CHECKS = "checks"
    MERGEABLE = "mergeable"
    APPROVAL_MERGE = "approval:merge"
    APPROVAL_DEPLOY = "approval:deploy"


def approval_for(gate: Gate) -> Waiting:
    return Waiting(f"approval:{gate.value}")


def gate_of(waiting: str | None) -> Gate | None:
    if waiting and waiting.startswith("approval:"):
        try:
            return Gate(waiting.removeprefix("approval:"))
        except ValueError:
            return None
    return None


def parse_gates(raw: str) -> frozenset[Gate]:
    """`none` (or empty), or a comma list of `merge`, `deploy`; ValueError naming a wrong word."""
    words = {w.strip().lower() for w in raw.split(",") if w.strip()}
    if words <= {"none"}:
        return frozenset()
    if "none" in words:
        raise ValueError("`none` cannot be combined with gates")
    unknown = sorted(w for w in words if w not in {g.value for g in Gate})
    if unknown:
        raise ValueError(f"unknown approval gate(s) {', '.join(unknown)}: expected merge, deploy or none")
    return frozenset(Gate(w) for w in words)


@dataclass(frozen=True)
class CheckRun:
    name: str
    status: str  # queued | in_progress | completed (and GitHub's newer waiting/requested/pending)
    conclusion: str | None
    summary: str = ""


@dataclass(frozen=True)
class CommitStatus:
    context: str
    state: str  # pending | success | failure | error
    description: str = ""


class ChecksState(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    NONE = "none"  # nothing reported for the commit


@dataclass(frozen=True)
class Failure:
    name: str
    conclusion: str
    summary: str


@dataclass(frozen=True)
class ChecksVerdict:
    state: ChecksState
    failures: tuple[Failure, ...] = ()


def latest_runs(runs: Iterable[CheckRun]) -> list[CheckRun]:
    """One run per name: GitHub lists re-runs too, newest first; the first seen per name wins."""
    seen: dict[str, CheckRun] = {}
    for run in runs:
        seen.setdefault(run.name, run)
    return list(seen.values())


def checks_verdict(runs: Sequence[CheckRun], statuses: Sequence[CommitStatus]) -> ChecksVerdict:
    """A failure wins as soon as one check failed (no need to wait for the rest); else pending while any
    runs; else passed; NONE when the commit has neither check runs nor statuses."""
    runs = latest_runs(runs)
    failures = [
        Failure(r.name, r.conclusion or "failure", r.summary)
        for r in runs
        if r.status == "completed" and (r.conclusion or "") not in _PASSING
    ]
    failures += [Failure(s.context, s.state, s.description) for s in statuses if s.state in _FAILING_STATES]
    if failures:
        return ChecksVerdict(ChecksState.FAILED, tuple(failures))
    if not runs and not statuses:
        return ChecksVerdict(ChecksState.NONE)
    pending = any(r.status != "completed" for r in runs) or any(s.state == "pending" for s in statuses)
    return ChecksVerdict(ChecksState.PENDING if pending else ChecksState.PASSED)


class ChecksStep(StrEnum):
    WAIT = "wait"
    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


def checks_step(
    verdict: ChecksVerdict, waited: float, *, appear_seconds: float, timeout: float
) -> ChecksStep:
    """What the task does next: a commit with no checks at all passes once checks had `appear_seconds`
    to show up (CI registers its runs a moment after the push); pending past `timeout` ends the wait."""
    if verdict.state == ChecksState.FAILED:
        return ChecksStep.FAILED
    if verdict.state == ChecksState.PASSED:
        return ChecksStep.PASSED
    if verdict.state == ChecksState.NONE and waited >= appear_seconds:
        return ChecksStep.PASSED
    return ChecksStep.TIMED_OUT if waited >= timeout else ChecksStep.WAIT


# GitHub's author_association of people who may write to the repository; anyone else's review or comment
# (on a public repository: any GitHub user) never starts an agent.
TRUSTED_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})


@dataclass(frozen=True)
class Review:
    id: int
    user: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    body: str = ""
    association: str = "NONE"


@dataclass(frozen=True)
class ReviewComment:
    id: int
    user: str
    body: str
    path: str = ""
    review_id: int | None = None
    association: str = "NONE"


def outstanding_changes(reviews: Iterable[Review], own_login: str | None) -> list[Review]:
    """Each person's latest deciding review, where that is CHANGES_REQUESTED; the service's own reviews
    (by its GitHub user) do not count. COMMENTED reviews do not change a person's decision."""
    latest: dict[str, Review] = {}
    for review in sorted(reviews, key=lambda r: r.id):
        if own_login is not None and review.user.lower() == own_login.lower():
            continue
        if review.association not in TRUSTED_ASSOCIATIONS:
            continue
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.user.lower()] = review
    return [r for r in latest.values() if r.state == "CHANGES_REQUESTED"]


def people_comments(comments: Iterable[ReviewComment], own_login: str | None) -> list[ReviewComment]:
    """Comments of people who may write to the repository, not of the service's own user."""
    return [
        c
        for c in comments
        if c.association in TRUSTED_ASSOCIATIONS
        and (own_login is None or c.user.lower() != own_login.lower())
    ]


@dataclass(frozen=True)
class Feedback:
    """What people asked for that the task has not reacted to yet, and the marks to store with the
    reaction (the newest review and comment ids it covers: GitHub's ids only grow)."""

    reviews: tuple[Review, ...]
    comments: tuple[ReviewComment, ...]
    review_mark: int
    comment_mark: int

    @property
    def fact(self) -> str:
        return f"r{self.review_mark}.c{self.comment_mark}"


def new_feedback(
    changes: Sequence[Review], comments: Sequence[ReviewComment], review_mark: int, comment_mark: int
) -> Feedback | None:
    """People's outstanding change requests and comments newer than the marks of the last reaction;
    None when there is nothing new (so an old request still open on GitHub is not answered twice)."""
    fresh_reviews = tuple(r for r in changes if r.id > review_mark)
    fresh_comments = tuple(c for c in comments if c.id > comment_mark)
    if not fresh_reviews and not fresh_comments:
        return None
    return Feedback(
        fresh_reviews,
        fresh_comments,
        max([review_mark, *(r.id for r in changes)]),
        max([comment_mark, *(c.id for c in comments)]),
    )


class MergeStep(StrEnum):
    WAIT = "wait"  # GitHub still computes, or something outside (branch protection) blocks
    MERGE = "merge"
    CONFLICT = "conflict"
    MERGED = "merged"  # a person merged it
    CLOSED = "closed"  # a person closed it unmerged


def merge_step(
    *, state: str, merged: bool, mergeable: bool | None, mergeable_state: str | None, people_block: bool
) -> MergeStep:
    if merged:
        return MergeStep.MERGED
    if state == "closed":
        return MergeStep.CLOSED
    if mergeable is False and mergeable_state in ("dirty", None, "unknown"):
        return MergeStep.CONFLICT
    if mergeable is None or mergeable_state in (None, "unknown") or people_block:
        return MergeStep.WAIT
    if mergeable and mergeable_state in ("clean", "unstable", "has_hooks", "behind"):
        return MergeStep.MERGE
    return MergeStep.WAIT  # blocked, draft: something a person or a rule must change


def fact_id(task_id: str, *parts: str) -> str:
    """An event id for one fact about a task's PR: the same fact read twice (webhook and poll) is one id."""
    return ".".join((task_id, "pr", *parts))


_PLAIN_BRANCH = re.compile(r"[A-Za-z0-9._/-]{1,200}")


def plain_branch(ref: str) -> bool:
    return _PLAIN_BRANCH.fullmatch(ref) is not None


def branch_named(ref: str) -> str:
    """A branch name as the service's own words in a prompt: the name in backticks when it is plain, else
    "the base branch" (git allows backticks and other prose in names, and the upstream is not ours)."""
    return f"`{ref}`" if plain_branch(ref) else "the base branch"


def conflict_said(base: str, bundle: str | None = None) -> str:
    """What a conflict fix-up is asked to do. With `bundle` (a path of the service's holding the base
    branch's current commits, which the agent's checkout lacks and its network cannot fetch), the exact
    commands; the base's name and the path enter commands only when the name is plain."""
    named = branch_named(base)
    said = f"GitHub says the pull request cannot merge: the branch conflicts with {named}."
    if bundle is None or not plain_branch(base):
        return f"{said} Merge {named} into your branch, resolve every conflict, run the tests, commit."
    return (
        f"{said} Your checkout does not have {named}'s new commits: the service put them in the git bundle "
        f"{shlex.quote(bundle)} (outside your checkout; read it, never copy it into the checkout or commit "
        "it). In your checkout, run exactly:\n"
        f"    git fetch {shlex.quote(bundle)} {base}\n"
        "    git merge FETCH_HEAD\n"
        "then resolve every conflict, run the tests, and commit the merge."
    )


def quoted(reports: Sequence[str], cap: int = REPORT_CAP) -> str:
    """Text from CI and people as data in a prompt: a JSON list in a fence it cannot close (backticks are
    escaped), capped; never words of the service."""
    kept: list[str] = []
    used = 0
    for report in list(reports)[:MAX_REPORTED]:
        text = report[: max(cap - used, 0)]
        if not text:
            break
        kept.append(text)
        used += len(text)
    body = json.dumps(kept, indent=1, ensure_ascii=True).replace("`", "\\u0060")
    return f"```json\n{body}\n```"


def failure_reports(failures: Sequence[Failure]) -> list[str]:
    return [f"check {f.name!r} ended {f.conclusion}: {f.summary[:SUMMARY_CAP]}" for f in failures]


def feedback_reports(reviews: Sequence[Review], comments: Sequence[ReviewComment]) -> list[str]:
    out = [f"review by {r.user} ({r.state}): {r.body[:SUMMARY_CAP]}" for r in reviews]
    out += [
        f"comment by {c.user}" + (f" on {c.path}" if c.path else "") + f": {c.body[:SUMMARY_CAP]}"
        for c in comments
    ]
    return out


_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def is_sha(value: object) -> bool:
    return isinstance(value, str) and _SHA.fullmatch(value) is not None


def head_moved(waited_on: str, pr_head: str, *, pushed_by_service: bool) -> bool:
    """Whether the PR's head on GitHub is news for a task waiting on `waited_on`: another commit, and none
    the service pushed of the branch (GitHub may still show the service's previous push for a moment)."""
    return is_sha(pr_head) and pr_head != waited_on and not pushed_by_service


def head_moved_id(task_id: str, pr_number: int, waited_on: str, pr_head: str) -> str:
    """One id for "the PR's head moved from this commit to that one", whoever reads it (a poll, a poke,
    another instance, a merge GitHub refused because of it)."""
    return fact_id(task_id, str(pr_number), "head", waited_on, pr_head)
