"""What each event does to a task: spawn the next agent, read an agent's outcome, end the task."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from orchestrator import untrusted_files
from orchestrator.agents import workspace
from orchestrator.agents.manager import AgentError, AgentManager, SpawnRequest
from orchestrator.agents.profiles import settings_of
from orchestrator.agents.retry import resume_prompt
from orchestrator.clock import iso_at, utc_now
from orchestrator.domain import outcomes as oc
from orchestrator.domain import pr_loop as pl
from orchestrator.domain import workflow_file as wf
from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.events import (
    Approval,
    AwaitChecks,
    CompleteTask,
    CreateBugTask,
    CreateFindingTasks,
    EventType,
    FailTask,
    FollowHead,
    Merge,
    PullClosed,
    ReadOutcome,
    SpawnAgent,
    reaction_for,
)
from orchestrator.domain.ids import new_agent_id
from orchestrator.domain.rate_limits import given_up, gives_up, resume_at
from orchestrator.domain.types import AgentStatus, AgentType, TaskStatus
from orchestrator.domain.watchdog import Budget
from orchestrator.errors import Unavailable
from orchestrator.forge.errors import ForgeError, ForgeUnavailable, NotMergeable
from orchestrator.forge.github import GitHubClient
from orchestrator.forge.publisher import INSTRUCTIONS_CAP, Publisher
from orchestrator.forge.sources import ForgeRepos
from orchestrator.forge.untrusted_repo import branch_tip
from orchestrator.prompts.render import render
from orchestrator.settings import Settings
from orchestrator.store.agents import AgentRow, AgentStore
from orchestrator.store.events import EventRow, EventStore
from orchestrator.store.profiles import ProfileStore
from orchestrator.store.tasks import TaskRow, TaskStore
from orchestrator.workflow import base_bundle, followed_head, repo_workflow
from orchestrator.workflow.context import step_context

log = logging.getLogger(__name__)


class _NoWorkflow(Exception):
    """The task's workflow file cannot be used (`cause` says why); the checkouts were made."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclasses.dataclass(frozen=True)
class _Step:
    """What a step's agent is started from, once its blocking part is done."""

    checkouts: workspace.TaskCheckouts
    workflow: wf.WorkflowFile
    shaped: wf.AgentSettings
    payload: dict[str, Any]
    bundle_dirs: list[Path]
    context: dict[str, str]


class TaskLifecycle(Protocol):
    """The task runner: every task status write of a run goes through it."""

    def task_started(self, task_id: str, fields: Mapping[str, Any]) -> bool: ...

    def end_task(self, task_id: str, *, ok: bool, error: str | None) -> bool: ...


class Retryable(Exception):
    """The handler could not finish for now (a service down, a limit hit): try again later."""


class HeadMoved(Exception):
    """The PR's head on GitHub is not the commit the task would merge: someone else pushed to it."""

    def __init__(self, head: str) -> None:
        super().__init__(head)
        self.head = head


RESUMES = "resumes_agent"  # in a step's payload: the rate-limited agent whose session it resumes
ATTEMPT = "retry_run"  # in a step's payload: which run of the step by its stage's retry policy (from 1)
_RESUMED_BY_SUPERVISION = (EndReason.STALLED.value, EndReason.LOOPING.value)
INVALID_RUNS = "invalid_outcomes"  # in a step's payload: runs before it that ended without a valid outcome


class Workflow:
    def __init__(
        self,
        settings: Settings,
        tasks: TaskStore,
        events: EventStore,
        agents: AgentStore,
        manager: AgentManager,
        forge: GitHubClient | None,
        publisher: Publisher,
        lifecycle: TaskLifecycle,
        wake: Callable[[], None],
        *,
        profiles: ProfileStore | None = None,
    ) -> None:
        self._profiles = profiles
        self._settings = settings
        self._tasks = tasks
        self._events = events
        self._agents = agents
        self._manager = manager
        self._forge = forge
        self._publisher = publisher
        self._lifecycle = lifecycle
        self._wake = wake
        self.on_wait: Callable[[], None] = lambda: None  # a wait on GitHub began: the PR watcher looks now
        self._removals: set[asyncio.Task[None]] = set()  # workspaces removed after their before_remove hook

    @staticmethod
    def agent_id_for(event: EventRow) -> str | None:
        reaction = reaction_for(EventType(event["type"]))
        return new_agent_id(reaction.agent_type) if isinstance(reaction, SpawnAgent) else None

    def emit(
        self, event_id: str, type_: EventType, task_id: str | None, agent_id: str | None, **payload: Any
    ) -> None:
        _, created = self._events.create(event_id, type_.value, task_id, agent_id, payload)
        if created:
            self._wake()

    def agent_ended(self, agent: AgentRow) -> None:
        """Every agent of a task reports through an `agent.finished` event, handled in the task's order."""
        if agent.get("task_id") and self._tasks.get(agent["task_id"]) is not None:
            self.emit(
                f"{agent['id']}.finished",
                EventType.AGENT_FINISHED,
                agent["task_id"],
                agent["id"],
                agent_type=agent["agent_type"],
                status=agent["status"],
            )

    def unreported_agents(self) -> int:
        """Agents that ended while no `agent.finished` was written (a crash in between) get theirs now."""
        count = 0
        for agent in self._agents.ended_with_task():
            if self._events.get(f"{agent['id']}.finished") is None:
                task = self._tasks.get(agent["task_id"])
                if task is not None and task["status"] not in (TaskStatus.COMPLETED, TaskStatus.FAILED):
                    self.agent_ended(agent)
                    count += 1
        return count

    async def handle(self, event: EventRow) -> str:
        task = self._tasks.get(event["task_id"]) if event["task_id"] else None
        if task is None:
            return f"no task {event['task_id']!r}: nothing to do"
        if task["status"] in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            return f"task already {task['status']}"
        try:
            workflow = repo_workflow.of_task(self._settings, task["id"])
        except wf.WorkflowFileError as exc:
            self.end_task(task, ok=False, reason=str(exc))
            return str(exc)
        reaction = wf.with_skips(reaction_for(EventType(event["type"])), workflow)
        stale = self._stale(event, task)
        if stale is not None:
            return stale
        if isinstance(reaction, wf.StageSkipped):
            return self._skip(event, task, reaction)
        if isinstance(reaction, SpawnAgent):
            return await self._spawn(event, task, reaction)
        if isinstance(reaction, AwaitChecks):
            return self._await_checks(event, task)
        if isinstance(reaction, Merge):
            return await self._merge_ready(event, task)
        if isinstance(reaction, PullClosed):
            return self._pull_closed(event, task)
        if isinstance(reaction, FollowHead):
            return await self._follow_head(event, task)
        if isinstance(reaction, FailTask):
            reason = str(event["payload"].get("reason") or event["type"])
            self.end_task(task, ok=False, reason=reason)
            return reason
        if isinstance(reaction, Approval):
            return self._answered(event, task, approved=reaction.approved)
        if isinstance(reaction, ReadOutcome):
            return await self._read_outcome(event, task)
        if isinstance(reaction, CompleteTask):
            self.end_task(task, ok=True, reason=None)
            return "task completed"
        if isinstance(reaction, CreateBugTask):
            return self._bug_task(event, task)
        if isinstance(reaction, CreateFindingTasks):
            return self._finding_tasks(event, task)
        raise AssertionError(reaction)

    async def _spawn(self, event: EventRow, task: TaskRow, reaction: SpawnAgent) -> str:
        agent_id = event["spawned_agent_id"]
        # the id was fixed at the event's first claim: only a later attempt can find its agent started
        if event["attempts"] > 1 and self._agents.get(agent_id) is not None:
            return f"agent {agent_id} was started before a restart"
        if reaction.fixup and task["review_rounds"] >= self._settings.max_review_rounds:
            reason = f"review rounds cap reached: {task['review_rounds']} rounds of changes requested"
            self.end_task(task, ok=False, reason=reason)
            return reason
        step = await asyncio.to_thread(self._step_ready, event, task, reaction)
        if isinstance(step, str):
            self.end_task(task, ok=False, reason=step)
            return step
        checkouts, shaped = step.checkouts, step.shaped
        limits = shaped.within(self._settings.agent_max_turns, self._settings.budget_usd)
        resumes = str(event["payload"].get(RESUMES) or "")
        parked = self._agents.get(resumes) if resumes else None  # no read on a step that resumes nothing
        session = parked["session_id"] if parked is not None else None
        context = step.context
        prompt = wf.fill(shaped.prompt, context) if shaped.prompt else render(reaction.agent_type, context)
        if parked is not None and session:
            prompt = resume_prompt(parked)
            if step.bundle_dirs:  # the earlier run's bundle is gone: the new one's commands
                prompt += "\n\n" + "\n".join(step.payload["comments"])
        try:
            await self._manager.spawn(
                SpawnRequest(
                    agent_type=reaction.agent_type,
                    prompt=prompt,
                    task_id=task["id"],
                    repo=task["repo"],
                    workspace=str(checkouts.primary),
                    add_dirs=tuple(str(p) for p in [*checkouts.others, *step.bundle_dirs]),
                    agent_id=agent_id,
                    resume_session=session,
                    config_dir=parked["config_dir"] if parked and session else None,
                    retry_of=parked["id"] if parked else None,
                    model=shaped.model,
                    max_turns=limits.max_turns,
                    budget=Budget(usd=limits.budget_usd) if limits.budget_usd else None,
                    tools=shaped.tools(),
                    hooks=step.workflow.hooks if step.workflow.hooks.any else None,
                    workspace_created=checkouts.created,
                )
            )
        except AgentError as exc:
            if isinstance(exc, Unavailable):
                raise Retryable(str(exc)) from exc
            self.end_task(task, ok=False, reason=f"could not start the {reaction.agent_type} agent: {exc}")
            return str(exc)
        started: dict[str, object] = {
            "branch": checkouts.branch,
            "workflow_step": reaction.agent_type.value,
            "waiting_for": None,
        }
        if reaction.fixup:  # a round counts once its fix-up agent runs, not per attempt to start one
            started["review_rounds"] = task["review_rounds"] + 1
        self._lifecycle.task_started(task["id"], started)
        return f"started {reaction.agent_type} agent {agent_id}"

    def _step_ready(self, event: EventRow, task: TaskRow, reaction: SpawnAgent) -> _Step | str:
        """The step's blocking part, in one thread trip: the task's checkouts, its workflow file, the
        agent's profile, the MCP servers' check, a fix-up's base bundle and the prompt's context; or why
        the task fails (Retryable when the base could not be brought within reach, for now)."""
        try:
            checkouts, workflow = self._checkouts_and_workflow(task)
        except workspace.WorkspaceError as exc:
            return f"could not prepare the checkout: {exc}"
        except _NoWorkflow as unusable:
            cause = unusable.cause
            return str(cause) if isinstance(cause, wf.WorkflowFileError) else f"{wf.WORKFLOW_FILE}: {cause}"
        shaped = workflow.agent(reaction.agent_type)
        if shaped.profile is not None:
            try:
                base = self._profile(shaped.profile, reaction.agent_type)
            except LookupError as exc:
                text = repo_workflow.text_of(self._settings, task["id"])
                return wf.said_at(text, ("agents", reaction.agent_type.value, "profile"), str(exc))
            shaped = shaped.over(base)
        if wf.has_mcp_servers(workflow):  # checked at every step: the allow-list may change on a restart
            text = repo_workflow.text_of(self._settings, task["id"])
            refused = wf.unfilled_reference(workflow, text, self._settings.mcp_env_names)
            if refused is not None:
                return refused
        payload, bundle_dirs = self._base_within_reach(event, task)
        read = functools.partial(self._read_file, task, checkouts.primary, checkouts.branch)
        context = step_context(task, payload, checkouts.primary, checkouts.branch, read)
        return _Step(checkouts, workflow, shaped, payload, bundle_dirs, context)

    def _profile(self, name: str, agent_type: AgentType) -> wf.AgentSettings:
        if self._profiles is None:
            raise LookupError("profiles are not available here")
        return settings_of(self._profiles, name, agent_type)

    def _checkouts_and_workflow(self, task: TaskRow) -> tuple[workspace.TaskCheckouts, wf.WorkflowFile]:
        """The task's checkouts, then its workflow file: one thread hop for both."""
        checkouts = workspace.prepare_task(
            self._settings.resolved_workspaces_dir,
            self._settings.resolved_projects_dir,
            task["id"],
            task["title"],
            task["repos"],
            ForgeRepos.of(self._settings),
            self._manager.workspace_blanks,
        )
        try:
            return checkouts, self._workflow_at_start(task)
        except (wf.WorkflowFileError, ForgeError, OSError) as exc:
            raise _NoWorkflow(exc) from exc

    def _workflow_at_start(self, task: TaskRow) -> wf.WorkflowFile:
        """The task's copy of its repository's workflow file, taken at its first step (its checkout
        being made has just fetched the default branch into the mirror)."""
        if repo_workflow.taken(self._settings, task["id"]):
            return repo_workflow.of_task(self._settings, task["id"])
        return repo_workflow.take(self._settings, task["id"], task["repo"])

    def _skip(self, event: EventRow, task: TaskRow, skipped: wf.StageSkipped) -> str:
        said = f"the {skipped.stage} stage is skipped by {wf.WORKFLOW_FILE}"
        if skipped.then is None:
            self.end_task(task, ok=True, reason=None)
            return f"{said}: task completed"
        self.emit(f"{event['id']}.skipped", skipped.then, task["id"], None, details=said)
        return f"{said}: {skipped.then}"

    def _gates(self, task: TaskRow) -> frozenset[pl.Gate]:
        return repo_workflow.of_task(self._settings, task["id"]).gates(self._settings.approval_gates)

    def _base_within_reach(self, event: EventRow, task: TaskRow) -> tuple[dict[str, Any], list[Path]]:
        """For a conflict fix-up: the base branch's current commits as a bundle the agent can read (its
        checkout lacks them and it has no network), and the prompt's words with the commands to merge
        them; the payload as it is, and no directory, for any other step."""
        payload = event["payload"]
        base = str(payload.get("base") or "")
        if event["type"] != EventType.PR_CONFLICT or not task["repo"] or not pl.plain_branch(base):
            return payload, []
        root = workspace.task_root(self._settings.resolved_workspaces_dir, task["id"])
        try:
            bundle = base_bundle.hand_base(self._publisher, root, task["repo"], base)
        except (ForgeError, OSError) as exc:
            raise Retryable(f"could not bring {base!r} within the fix-up's reach: {exc}") from exc
        log.info(
            "task %s: %s at %s handed to the fix-up as %s", task["id"], base, bundle.sha[:12], bundle.path
        )
        said = pl.conflict_said(base, str(bundle.path))
        return {**payload, "comments": [said]}, [bundle.directory]

    def _read_file(self, task: TaskRow, checkout: Path, branch: str, name: str) -> str | None:
        """From the branch in the service's mirror once a coding agent delivered it, else from the
        checkout without following links; capped either way."""
        repo = task["repo"]
        if repo and self._publisher.has_branch(repo, branch):
            return self._publisher.read_file(repo, branch, name, INSTRUCTIONS_CAP)
        return untrusted_files.read_text(checkout, name, INSTRUCTIONS_CAP)

    async def _read_outcome(self, event: EventRow, task: TaskRow) -> str:
        agent = self._agents.get(event["agent_id"] or "")
        if agent is None:
            return "the agent is gone"
        agent_type = AgentType(agent["agent_type"])
        if agent.get("end_reason") == EndReason.NEVER_STARTED:
            return self._step_again(agent)
        if agent["status"] == AgentStatus.RATE_LIMITED:
            return self._park_step(agent, task)
        if agent["status"] != AgentStatus.COMPLETED:
            if retried := self._retry_step(agent, task, str(agent.get("end_reason") or "")):
                return retried
            why = agent.get("error") or "no reason"
            reason = f"{agent_type} agent {agent['id']} ended {agent['status']}: {why}"
            self.end_task(task, ok=False, reason=reason)
            return reason
        try:
            outcome = oc.parse_outcome(agent_type, agent["metadata"].get("result"))
        except oc.OutcomeError as exc:
            if retried := self._retry_step(agent, task, wf.INVALID_OUTCOME):
                return retried
            reason = f"{agent_type} agent {agent['id']} ended without a valid outcome: {exc}"
            self.end_task(task, ok=False, reason=reason)
            return reason
        try:
            return await self._follow(agent, task, outcome)
        except ForgeUnavailable as exc:
            raise Retryable(str(exc)) from exc
        except ForgeError as exc:
            reason = f"GitHub refused after the {agent_type} agent: {exc}"
            self.end_task(task, ok=False, reason=reason)
            return reason

    def _retry_step(self, agent: AgentRow, task: TaskRow, why: str) -> str | None:
        """The step runs again when the repository's retry policy for its stage says so (`why`: the end
        reason, or an invalid outcome); None when it does not."""
        agent_type = AgentType(agent["agent_type"])
        spawner = self._events.spawner_of(agent["id"])
        try:
            workflow = repo_workflow.of_task(self._settings, task["id"])
        except wf.WorkflowFileError:
            return None
        policy = workflow.retry_of(agent_type)
        if spawner is None or policy.attempts == 1:
            return None
        if why in _RESUMED_BY_SUPERVISION and self._settings.agent_stall_action == "kill_resume":
            return None  # agents/retry.py resumes the run already
        ended_run = int(spawner["payload"].get(ATTEMPT) or 1)
        invalid_before = int(spawner["payload"].get(INVALID_RUNS) or 0)
        refused = int(agent["metadata"].get("permission_denials") or 0) > 0
        delay = policy.delay_before_next(ended_run, why, invalid_before, refused=refused)
        if delay is None or self._runs_again_of(task["id"]) >= workflow.retry.max_empty_runs:
            return None
        invalid = invalid_before + 1 if why == wf.INVALID_OUTCOME else 0
        self._step_again(
            agent,
            resume=policy.resume and bool(agent["session_id"]),
            not_before=iso_at(time.time() + delay),
            retry={ATTEMPT: ended_run + 1, INVALID_RUNS: invalid},
        )
        return (
            f"{agent_type} agent {agent['id']} ended {why}: run {ended_run + 1} of {policy.attempts} "
            f"of its step in {delay:g} s"
        )

    def _runs_again_of(self, task_id: str) -> int:
        """How many steps of the task its retry policy ran again (each after a run that produced nothing)."""
        steps, _ = self._events.page(statuses=None, type_=None, task_id=task_id, limit=10_000, offset=0)
        return sum(1 for step in steps if int(step["payload"].get(ATTEMPT) or 1) > 1)

    def _step_again(
        self,
        agent: AgentRow,
        *,
        resume: bool = False,
        not_before: str | None = None,
        retry: dict[str, int] | None = None,
    ) -> str:
        """The step that started `agent` runs again with a new agent: afresh when the agent never started
        (its service stopped before its process did), or resuming its session after a rate limit."""
        spawner = self._events.spawner_of(agent["id"])
        if spawner is None:
            return f"agent {agent['id']} ended {agent['status']}, and no event started it"
        # the step was taken when its fact was fresh; the task left that wait when its agent started,
        # so the fact's wait must not make the step again look stale
        payload = {k: v for k, v in spawner["payload"].items() if k != "waited_for"}
        if retry is not None:  # a retry by the stage's policy: which run, and afresh unless it resumes
            payload.update(retry)
            payload.pop(RESUMES, None)
        if resume:
            payload[RESUMES] = agent["id"]
        again = f"{spawner['id']}.again.{agent['id']}"
        _, created = self._events.create(
            again, spawner["type"], spawner["task_id"], spawner["agent_id"], payload, not_before=not_before
        )
        if created:
            self._wake()
        return f"agent {agent['id']} ended {agent['status']}: its step runs again"

    def _park_step(self, agent: AgentRow, task: TaskRow) -> str:
        """A rate or usage limit says nothing about the task: its step waits for the reset (or a backoff)
        and then resumes the same Claude session, as the queue does in direct mode."""
        attempts = self._agents.count_for_task(task["id"], AgentStatus.RATE_LIMITED)
        cap = self._settings.rate_limit_max_per_task
        if gives_up(attempts, cap):
            why = agent.get("error") or ""
            reason = f"{agent['agent_type']} agent {agent['id']} {given_up(attempts, cap)}: {why}"
            self.end_task(task, ok=False, reason=reason[:2000])
            return reason
        until = resume_at(
            time.time(),
            agent["metadata"].get("rate_limit_reset_at"),
            self._settings.rate_limit_backoff_seconds,
            attempts,
        )
        return self._step_again(agent, resume=True, not_before=iso_at(until))

    async def _follow(self, agent: AgentRow, task: TaskRow, outcome: oc.Outcome) -> str:
        next_id = f"{agent['id']}.next"
        tid, aid = task["id"], agent["id"]
        if isinstance(outcome, oc.StarterOutcome):
            self._tasks.update(tid, {"execution_plan": outcome.model_dump()}, None)
            kind = EventType.AUDIT_REQUESTED if outcome.audit else EventType.TASK_PLAN_CREATED
            self.emit(next_id, kind, tid, aid, summary=outcome.summary)
            return f"plan stored; {kind}"
        if isinstance(outcome, oc.CodingOutcome):
            return await self._publish_change(agent, task, outcome, next_id)
        if isinstance(outcome, oc.ReviewOutcome):
            if outcome.verdict == "changes_requested":
                self.emit(next_id, EventType.PR_CHANGES_REQUESTED, tid, aid, comments=outcome.comments)
                return "changes requested"
            return self._toward_merge(task, next_id, aid)
        if isinstance(outcome, oc.DeployOutcome):
            if not outcome.deployed:
                self.end_task(task, ok=False, reason=f"deploy failed: {outcome.details}")
                return "deploy failed"
            self.emit(next_id, EventType.DEPLOY_COMPLETED, tid, aid, details=outcome.details)
            return "deployed"
        if isinstance(outcome, oc.VerifyOutcome):
            kind = EventType.VERIFY_PASSED if outcome.passed else EventType.VERIFY_FAILED
            self.emit(next_id, kind, tid, aid, evidence=outcome.evidence)
            return str(kind)
        if isinstance(outcome, oc.AuditOutcome):
            findings = [f.model_dump() for f in outcome.findings]
            self.emit(next_id, EventType.AUDIT_COMPLETED, tid, aid, findings=findings)
            return f"{len(findings)} findings"
        raise AssertionError(outcome)

    async def _publish_change(
        self, agent: AgentRow, task: TaskRow, outcome: oc.CodingOutcome, next_id: str
    ) -> str:
        checkout = Path(agent["workspace"])
        branch = task["branch"] or workspace.task_branch(task["id"], task["title"])
        pushed, head_sha = await asyncio.to_thread(self._push, task["repo"], checkout, branch)
        pr: dict[str, Any] = {}
        if self._forge is not None and self._forge.configured and task["repo"]:
            pull = await asyncio.to_thread(
                self._forge.create_pull, task["repo"], head=branch, title=task["title"], body=outcome.summary
            )
            pr = {"pr_number": pull.number, "pr_url": pull.html_url}
            self._tasks.record_pr(task["id"], pr, pull.created)
        first = task["pr_number"] is None and task["review_rounds"] == 0
        kind = EventType.PR_CREATED if first else EventType.PR_UPDATED
        self.emit(
            next_id,
            kind,
            task["id"],
            agent["id"],
            branch=branch,
            pushed=pushed,
            head_sha=head_sha,
            summary=outcome.summary,
            **pr,
        )
        return f"{kind} for {branch}"

    def _push(self, repo: str | None, checkout: Path, branch: str) -> tuple[bool, str | None]:
        """The branch goes into the service's mirror, and from there to GitHub when a token is set;
        nothing of the checkout's git configuration (remotes, hooks, helpers) is used. Whether it was
        pushed, and its commit."""
        if not repo:
            return False, None
        sha = self._publisher.take(repo, checkout, branch)
        if not self._publisher.can_push:
            return False, sha
        self._publisher.push(repo, branch)
        return True, sha

    def _stale(self, event: EventRow, task: TaskRow) -> str | None:
        """A fact the PR watcher read about a wait the task has left (another fact came first, or a new
        commit started a new wait): dropped."""
        waited = event["payload"].get("waited_for")
        if waited is None:
            return None
        if (
            task["status"] != TaskStatus.IN_PROGRESS
            or task["waiting_for"] != waited
            or task["head_sha"] != event["payload"].get("head_sha")
        ):
            return f"stale: the task no longer waits for {waited} on that commit"
        return None

    def _watchable(self, task: TaskRow) -> bool:
        return bool(
            self._forge is not None
            and self._forge.configured
            and task["repo"]
            and task["pr_number"]
            and task["head_sha"]
        )

    def _await_checks(self, event: EventRow, task: TaskRow) -> str:
        payload = event["payload"]
        sha = payload.get("head_sha")
        if not (self._forge is not None and self._forge.configured and task["pr_number"] and sha):
            self.emit(f"{event['id']}.checks", EventType.PR_CHECKS_PASSED, task["id"], None, checks="none")
            return "no pull request on GitHub: no checks to wait for"
        fields = {"waiting_for": pl.Waiting.CHECKS.value, "waiting_since": utc_now(), "head_sha": sha}
        self._tasks.update(task["id"], fields, None)
        self.on_wait()
        return f"waiting for the checks of {str(sha)[:12]}"

    def _toward_merge(self, task: TaskRow, event_id: str, agent_id: str | None) -> str:
        """The reviewer approved: a person's approval first when the merge gate is set, then GitHub's
        word that the PR can merge (the watcher), then the merge."""
        if pl.Gate.MERGE in self._gates(task):
            return self._park(task, pl.Gate.MERGE)
        return self._wait_mergeable(task, event_id, agent_id)

    def _wait_mergeable(self, task: TaskRow, event_id: str, agent_id: str | None) -> str:
        if not self._watchable(task):
            return self._after_merge(task, event_id, agent_id, merge="no pull request to merge")
        fields = {"waiting_for": pl.Waiting.MERGEABLE.value, "waiting_since": utc_now()}
        self._tasks.update(task["id"], fields, None)
        self.on_wait()
        return "waiting for GitHub to say the pull request can merge"

    async def _merge_ready(self, event: EventRow, task: TaskRow) -> str:
        try:
            merged = await asyncio.to_thread(self._merge, task)
        except ForgeUnavailable as exc:
            raise Retryable(str(exc)) from exc
        except HeadMoved as moved:
            return self._head_moved(task, moved.head)
        except NotMergeable as exc:
            reason = f"GitHub refused to merge pull request #{task['pr_number']}: {exc}"
            self.end_task(task, ok=False, reason=reason)
            return reason
        return self._after_merge(task, f"{event['id']}.merged", None, merge=merged)

    def _after_merge(self, task: TaskRow, event_id: str, agent_id: str | None, *, merge: str) -> str:
        if pl.Gate.DEPLOY in self._gates(task):
            return f"{merge}; " + self._park(task, pl.Gate.DEPLOY)
        self._tasks.update(task["id"], {"waiting_for": None}, None)
        self.emit(event_id, EventType.PR_MERGED, task["id"], agent_id, merge=merge)
        return f"{merge}; deploying"

    def _park(self, task: TaskRow, gate: pl.Gate) -> str:
        waiting = pl.approval_for(gate).value
        fields = {"waiting_for": waiting, "waiting_since": utc_now()}
        if not self._tasks.update(task["id"], fields, TaskStatus.AWAITING_APPROVAL):
            return f"task {task['id']} could not wait for approval from {task['status']}"
        return f"waiting for a person's approval to {gate.value}"

    def _answered(self, event: EventRow, task: TaskRow, *, approved: bool) -> str:
        gate = pl.gate_of(task["waiting_for"])
        if task["status"] != TaskStatus.AWAITING_APPROVAL or gate is None:
            return "stale: the task waits for no approval"
        if event["payload"].get("gate") != gate.value:
            return f"stale: the task waits for approval to {gate.value}"
        if not approved:
            reason = (
                f"rejected at the {gate.value} gate: {event['payload'].get('reason') or 'no reason given'}"
            )
            self.end_task(task, ok=False, reason=reason)
            return reason
        if not self._lifecycle.task_started(task["id"], {"waiting_for": None}):
            return f"task {task['id']} could not resume"
        if gate == pl.Gate.MERGE:
            return self._wait_mergeable({**task, "waiting_for": None}, f"{event['id']}.merge", None)
        self.emit(f"{event['id']}.deploy", EventType.DEPLOY_REQUESTED, task["id"], None, approved=True)
        return "deploy approved"

    def _pull_closed(self, event: EventRow, task: TaskRow) -> str:
        if event["payload"].get("merged"):
            return self._after_merge(
                task, f"{event['id']}.deploy", None, merge="merged by a person on GitHub"
            )
        reason = f"pull request #{task['pr_number']} was closed without merging on GitHub"
        self.end_task(task, ok=False, reason=reason)
        return reason

    def _merge(self, task: TaskRow) -> str:
        if self._forge is None or not self._forge.configured or not task["pr_number"] or not task["repo"]:
            return "no pull request to merge"
        pull = self._forge.get_pull(task["repo"], task["pr_number"])
        if pull.merged:
            return "already merged"
        if pl.is_sha(pull.head.sha) and pull.head.sha != task["head_sha"]:
            raise HeadMoved(pull.head.sha)
        # only the commit whose checks passed and that the reviewer (and a person at the gate) saw: a commit
        # pushed to the branch since makes GitHub refuse (409), and the new head is followed
        try:
            result = self._forge.merge_pull(
                task["repo"],
                task["pr_number"],
                merge_method=self._settings.merge_method,
                sha=task["head_sha"],
            )
        except NotMergeable:
            now = self._forge.get_pull(task["repo"], task["pr_number"])
            if not now.merged and pl.is_sha(now.head.sha) and now.head.sha != task["head_sha"]:
                raise HeadMoved(now.head.sha) from None
            raise
        return f"merged {result.sha or ''}".strip()

    def _head_moved(self, task: TaskRow, head: str) -> str:
        """The merge found another head than the one checked and reviewed: the same fact the PR watcher
        writes when it reads it first (one id), so the new head is followed once."""
        old = str(task["head_sha"])
        self.emit(
            pl.head_moved_id(task["id"], int(task["pr_number"] or 0), old, head),
            EventType.PR_HEAD_MOVED,
            task["id"],
            None,
            waited_for=task["waiting_for"],
            head_sha=old,
            new_head_sha=head,
        )
        return f"not merged: the head moved from {old[:12]} to {head[:12]}, which is followed"

    async def _follow_head(self, event: EventRow, task: TaskRow) -> str:
        """Someone else's commit is the PR's head now: the branch as it is upstream is taken into the
        mirror and a new checkout, then its checks are waited for and the reviewer reviews it again
        before any merge, which names that commit."""
        told = str(event["payload"].get("new_head_sha") or "")
        if not task["repo"]:
            return "no repository to follow"
        branch = task["branch"] or workspace.task_branch(task["id"], task["title"])
        try:
            tip = await asyncio.to_thread(
                followed_head.take_head, self._settings, self._publisher, task, branch
            )
        except (ForgeError, workspace.WorkspaceError, OSError) as exc:
            raise Retryable(f"could not take the pushed head of {branch}: {exc}") from exc
        if tip is None:
            raise Retryable(f"{branch} upstream does not show {told[:12]} yet")
        fields = {"waiting_for": pl.Waiting.CHECKS.value, "waiting_since": utc_now(), "head_sha": tip}
        self._tasks.update(task["id"], fields, None)
        self.on_wait()
        log.info("task %s: follows %s, pushed to %s by someone else", task["id"], tip[:12], branch)
        return f"following {tip[:12]}: waiting for its checks, then a new review"

    def _bug_task(self, event: EventRow, task: TaskRow) -> str:
        evidence = event["payload"].get("evidence") or []
        bug_id = f"{task['id']}-bug-{event['id'][-8:]}"
        bug_id = re.sub(r"[^A-Za-z0-9_.:-]", "-", bug_id)[:120]
        self._tasks.create(
            {
                "id": bug_id,
                "title": f"Bug: verification of {task['title']} failed"[:500],
                "description": "Verification failed. Evidence:\n" + "\n".join(f"- {e}" for e in evidence),
                "repo": task["repo"],
                "repos": task["repos"],
                "parent_task_id": task["id"],
                "priority": task["priority"] + 1,
            }
        )
        self.end_task(task, ok=False, reason=f"verification failed: bug task {bug_id} created")
        return f"bug task {bug_id}"

    def _finding_tasks(self, event: EventRow, task: TaskRow) -> str:
        findings = event["payload"].get("findings") or []
        created = []
        for i, finding in enumerate(findings):
            finding_id = f"{task['id']}-finding-{i + 1}"[:120]
            row = self._tasks.create(
                {
                    "id": finding_id,
                    "title": str(finding.get("title") or "finding")[:500],
                    "description": str(finding.get("description") or ""),
                    "repo": task["repo"],
                    "repos": task["repos"],
                    "parent_task_id": task["id"],
                    "priority": {"high": 2, "medium": 1}.get(str(finding.get("severity")), 0),
                }
            )
            if row is not None:
                created.append(finding_id)
        self.end_task(task, ok=True, reason=None)
        return f"{len(created)} finding tasks"

    def fail_task_of(self, event: EventRow, reason: str) -> None:
        task = self._tasks.get(event["task_id"]) if event["task_id"] else None
        if task is not None:
            self.end_task(task, ok=False, reason=reason)

    def end_task(self, task: TaskRow, *, ok: bool, reason: str | None) -> None:
        if not self._lifecycle.end_task(task["id"], ok=ok, error=reason):
            return
        ended = TaskStatus.COMPLETED if ok else TaskStatus.FAILED
        hooks = self._hooks_of(task)
        repo_workflow.forget(self._settings, task["id"])
        log.info("task %s %s%s", task["id"], ended.value, f": {reason}" if reason else "")
        policy = self._settings.workspace_cleanup
        if policy == "on_end" or (policy == "on_success" and ok):
            root = workspace.task_root(self._settings.resolved_workspaces_dir, task["id"])
            kept = self._unpushed(task, root)
            if kept:
                log.warning("workspace of task %s kept: %s", task["id"], kept)
            elif not self._remove_after_hook(task, root, hooks):
                workspace.remove(root)

    def _hooks_of(self, task: TaskRow) -> wf.Hooks:
        try:
            return repo_workflow.of_task(self._settings, task["id"]).hooks
        except wf.WorkflowFileError:
            return wf.Hooks()

    def _remove_after_hook(self, task: TaskRow, root: Path, hooks: wf.Hooks) -> bool:
        """The before_remove hook, then the removal, in the background (the task has ended already); in
        the sandbox of the task's last agent, whose log lines its output becomes. False when there is no
        agent to run it as (nothing ever ran in the workspace): the caller removes it at once."""
        command = hooks.before_remove
        last = self._agents.last_of_task(task["id"]) if command else None
        if last is None or not command:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False

        async def hook_then_remove() -> None:
            try:
                others = [str(p) for p in workspace.checkouts_of(root) if str(p) != last["workspace"]]
                end = await self._manager.run_hook(
                    last, wf.HookName.BEFORE_REMOVE, command, hooks.timeout_seconds, tuple(others)
                )
                if not end.ok:
                    log.warning("task %s: %s", task["id"], end.reason)
            except Exception:
                log.exception("task %s: the before_remove hook could not run", task["id"])
            await asyncio.to_thread(workspace.remove, root)

        job = loop.create_task(hook_then_remove(), name=f"before-remove-{task['id']}")
        self._removals.add(job)
        job.add_done_callback(self._removals.discard)
        return True

    def _unpushed(self, task: TaskRow, root: Path) -> str | None:
        """Why removing the task's checkouts would lose work: a commit of the task's branch that the
        service did not push (read without running git in the checkout); None if nothing."""
        branch = task["branch"] or workspace.task_branch(task["id"], task["title"])
        names = task["repos"] or ([task["repo"]] if task["repo"] else [])
        repos = {directory: name for name, directory in workspace.checkout_names(names).items()}
        for checkout in workspace.checkouts_of(root):
            try:
                tip = branch_tip(checkout, branch)
            except ForgeError as exc:
                return str(exc)
            if tip is None:
                continue
            repo = repos.get(checkout.name)
            if repo is None or not self._publisher.pushed(repo, branch, tip):
                return f"commit {tip[:12]} of {branch} in {checkout} was never pushed"
        return None
