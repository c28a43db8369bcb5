"""Agents as Kubernetes Jobs (AGENT_RUNTIME=kubernetes), through the official `kubernetes` client.

A Job per agent (manifest: `k8s_manifest.py`). Its pod's log is followed by a thread on the service's
side and appended to the run directory's `stdout` file, so the manager reads it by byte offset as for
any runtime. Kubernetes keeps one log per container, stdout and stderr interleaved: all of it lands in
`stdout` (non-JSON lines are stored as they are); `stderr` only receives the runtime's own notes, such
as why a pod cannot start.

Adoption and the byte rule: a restarted service finds the Job by the label `orchestrator.agent_id`,
re-reads the pod's log from its beginning and drops as many bytes as the `stdout` file already holds,
so the file stays a byte-exact copy of the pod's log and the manager goes on from its stored offset.
(The same rule covers a log stream that the API server cut: the follower reconnects and skips what it
has.) This holds while the kubelet keeps the whole log (it rotates container logs past 10 MiB by
default); a Job deleted meanwhile (ttlSecondsAfterFinished, or by hand) cannot be adopted.

Status: the run has ended when the container is terminated and its log has been read to the end; the
exit code is the container's. terminate() deletes the Job (propagation Background: the pod gets SIGTERM
and its grace period); kill() deletes it with a grace period of 0 and deletes its pods at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from orchestrator.domain.types import LogStream
from orchestrator.runtimes import files
from orchestrator.runtimes.base import DefaultLimits, RunHandle, RunSpec, RuntimeError_
from orchestrator.runtimes.k8s_api import KubeApi, api_errors, lookup_errors, short_error, status_of
from orchestrator.runtimes.k8s_manifest import (
    CONTAINER,
    JobSettings,
    ManifestError,
    job_manifest,
    job_name,
    prompt_config_map,
    selector,
)
from orchestrator.runtimes.ownership import hand_over_recorded, handover_problem, take_back
from orchestrator.runtimes.sandbox import writable_paths

log = logging.getLogger(__name__)

REF_PREFIX = "k8s-job-"
_CHECK_CACHE_SECONDS = 5.0
_QUIET_WAITING = ("ContainerCreating", "PodInitializing")


def _job_failed(job: Any) -> bool:
    status = job.status
    if status is None:
        return False
    if status.failed:
        return True
    return any(c.type == "Failed" and c.status == "True" for c in status.conditions or [])


def _container_state(pod: Any) -> tuple[str | None, Any]:
    """('waiting'|'running'|'terminated'|None, the state object) of the agent's container."""
    for status in (pod.status.container_statuses or []) if pod.status else []:
        if status.name != CONTAINER or status.state is None:
            continue
        for kind in ("terminated", "running", "waiting"):
            detail = getattr(status.state, kind)
            if detail is not None:
                return kind, detail
    return None, None


class LogFollower:
    """A thread that copies the pod's log into `stdout` and notices the end of the run."""

    def __init__(self, api: KubeApi, job: str, agent_id: str, run_dir: Path, poll_seconds: float) -> None:
        self._api = api
        self._job = job
        self._agent_id = agent_id
        self._run_dir = run_dir
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._response: Any = None
        self._last_note = ""
        self.done = threading.Event()
        self.exit_code: int | None = None
        self._thread = threading.Thread(target=self._run, name=f"k8s-logs-{agent_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()

    def _finish(self, exit_code: int | None) -> None:
        self.exit_code = exit_code
        if exit_code is not None:
            tmp = self._run_dir / "exit_code.tmp"
            with contextlib.suppress(OSError):
                tmp.write_text(f"{exit_code}\n")
                tmp.replace(self._run_dir / files.EXIT_CODE_FILE)
        self.done.set()

    def _note(self, text: str) -> None:
        if text == self._last_note:
            return
        self._last_note = text
        with contextlib.suppress(OSError), (self._run_dir / LogStream.STDERR.value).open("a") as f:
            f.write(f"orchestrator: {text}\n")

    def _run(self) -> None:
        errors = api_errors()
        while not self._stop.is_set():
            try:
                if self._step():
                    return
            except errors as exc:
                if self._stop.is_set():
                    return
                if status_of(exc) == 404:
                    self._finish(None)
                    return
                log.warning("agent %s: Kubernetes API: %s", self._agent_id, exc)
            except Exception:
                log.exception("agent %s: following its pod failed", self._agent_id)
            self._stop.wait(self._poll)

    def _newest_pod(self) -> Any:
        pods = self._api.core.list_namespaced_pod(
            self._api.namespace, label_selector=selector(self._agent_id)
        )
        items = sorted(pods.items or [], key=lambda p: p.metadata.creation_timestamp or 0)
        return items[-1] if items else None

    def _step(self) -> bool:
        """One look at the Job and its pod; True once the run has ended and its log is copied."""
        job = self._api.batch.read_namespaced_job(self._job, self._api.namespace)
        pod = self._newest_pod()
        kind: str | None = None
        detail: Any = None
        if pod is not None:
            kind, detail = _container_state(pod)
        if kind in ("running", "terminated"):
            self._copy_log(pod.metadata.name)
            if self._stop.is_set():
                return True
            pod = self._api.core.read_namespaced_pod(pod.metadata.name, self._api.namespace)
            kind, detail = _container_state(pod)
            if kind == "terminated":
                self._finish(detail.exit_code)
                return True
            return False
        if kind == "waiting" and pod is not None and detail.reason and detail.reason not in _QUIET_WAITING:
            self._note(f"pod {pod.metadata.name} waiting: {detail.reason}: {detail.message or ''}".strip())
        if _job_failed(job):
            reason = next((c.message for c in job.status.conditions or [] if c.type == "Failed"), "")
            self._note(f"job {self._job} failed before its agent ran: {reason}")
            self._finish(None)
            return True
        if pod is not None and pod.status and pod.status.phase in ("Succeeded", "Failed") and kind is None:
            self._finish(None)
            return True
        self._stop.wait(self._poll)
        return False

    def _copy_log(self, pod_name: str) -> None:
        """Streams the log from its start, dropping the bytes the file already holds."""
        path = self._run_dir / LogStream.STDOUT.value
        skip = path.stat().st_size if path.exists() else 0
        response = self._api.core.read_namespaced_pod_log(
            pod_name, self._api.namespace, container=CONTAINER, follow=True, _preload_content=False
        )
        self._response = response
        seen = 0
        try:
            with path.open("ab") as out:
                while not self._stop.is_set():
                    chunk = response.read1(1 << 16)
                    if not chunk:
                        break
                    if seen + len(chunk) > skip:
                        out.write(chunk[max(0, skip - seen) :])
                        out.flush()
                    seen += len(chunk)
        finally:
            self._response = None
            with contextlib.suppress(Exception):
                response.release_conn()


class KubernetesHandle:
    def __init__(self, api: KubeApi, job: str, agent_id: str, run_dir: Path, poll_seconds: float) -> None:
        self._api = api
        self._job = job
        self._agent_id = agent_id
        self._files = files.OutputFiles(run_dir)
        self._follower = LogFollower(api, job, agent_id, run_dir, poll_seconds)
        self._follower.start()

    @property
    def ref(self) -> str:
        return f"{REF_PREFIX}{self._job}"

    @property
    def pid(self) -> int | None:
        return None

    def read(self, stream: LogStream, offset: int, max_bytes: int) -> bytes:
        return self._files.read(stream, offset, max_bytes)

    def poll(self) -> tuple[bool, int | None]:
        if self._follower.done.is_set():
            return True, self._follower.exit_code
        return False, None

    async def wait(self) -> int | None:
        while not self._follower.done.is_set():  # noqa: ASYNC110 - set by a thread
            await asyncio.sleep(0.2)
        return self._follower.exit_code

    def _delete(self, grace: int | None) -> None:
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        try:
            self._api.batch.delete_namespaced_job(self._job, self._api.namespace, body=body)
        except api_errors() as exc:
            if status_of(exc) != 404:
                log.warning("agent %s: cannot delete job %s: %s", self._agent_id, self._job, exc)

    def terminate(self) -> None:
        self._delete(None)

    def kill(self) -> None:
        self._delete(0)
        with contextlib.suppress(*api_errors()):
            pods = self._api.core.list_namespaced_pod(
                self._api.namespace, label_selector=selector(self._agent_id)
            )
            for pod in pods.items or []:
                self._api.core.delete_namespaced_pod(
                    pod.metadata.name, self._api.namespace, body={"gracePeriodSeconds": 0}
                )

    def exit_fd(self) -> int | None:
        return None

    def sweep(self) -> None:
        """The pod's processes ended with it and the Job goes after ttlSecondsAfterFinished; a root
        service takes back the paths on the PVC it handed to the agent."""
        take_back(self._files.run_dir)

    def close(self) -> None:
        self._follower.stop()
        self._files.close()


class KubernetesRuntime:
    name = "kubernetes"
    run_files: tuple[str, ...] = ()

    def __init__(
        self,
        job_settings: JobSettings,
        *,
        api_url: str | None = None,
        defaults: DefaultLimits | None = None,
        poll_seconds: float = 0.25,
    ) -> None:
        self.job_settings = job_settings
        self._api = KubeApi(job_settings.namespace, api_url)
        self._defaults = defaults or DefaultLimits()
        self._poll = poll_seconds
        self._checked: tuple[float, str | None] = (0.0, None)

    def _start(self, spec: RunSpec) -> KubernetesHandle:
        cfg = self.job_settings
        if spec.mcp_config is not None:  # its secrets would have to go in a Secret: not built
            raise RuntimeError_("MCP servers are not available on the kubernetes runtime")
        try:
            body = job_manifest(spec, self._defaults.apply(spec.limits), cfg)
        except ManifestError as exc:
            raise RuntimeError_(str(exc)) from exc
        files.create(spec.run_dir)
        if cfg.pvc_name:
            try:
                hand_over_recorded(spec.run_dir, writable_paths(spec), [], cfg.user)
            except OSError as exc:
                raise RuntimeError_(
                    f"cannot hand the agent's paths on the PVC to AGENT_CONTAINER_USER {cfg.user}: {exc}"
                ) from exc
        name = body["metadata"]["name"]
        try:
            job = self._api.batch.create_namespaced_job(self._api.namespace, body)
        except api_errors() as exc:
            raise RuntimeError_(f"cannot create the job: {short_error(exc)}") from exc
        try:
            # after the Job, to be owned by it; its pod waits in ContainerCreating until this exists
            self._api.core.create_namespaced_config_map(
                self._api.namespace, prompt_config_map(spec, cfg, job.metadata.uid)
            )
        except api_errors() as exc:
            with contextlib.suppress(*api_errors()):
                now = {"propagationPolicy": "Background", "gracePeriodSeconds": 0}
                self._api.batch.delete_namespaced_job(name, self._api.namespace, body=now)
            raise RuntimeError_(f"cannot create the prompt's ConfigMap: {short_error(exc)}") from exc
        return KubernetesHandle(self._api, name, spec.agent_id, spec.run_dir, self._poll)

    async def start(self, spec: RunSpec) -> RunHandle:
        return await asyncio.to_thread(self._start, spec)

    def _adopt(self, agent_id: str, ref: str, run_dir: Path) -> KubernetesHandle | None:
        if (ref and not ref.startswith(REF_PREFIX)) or not run_dir.is_dir():  # no ref: found by label
            return None
        try:
            jobs = self._api.batch.list_namespaced_job(self._api.namespace, label_selector=selector(agent_id))
        except lookup_errors() as exc:
            log.warning("agent %s: cannot look for its job: %s", agent_id, short_error(exc))
            return None
        names = [j.metadata.name for j in jobs.items or []]
        if not names:
            return None
        name = job_name(agent_id) if job_name(agent_id) in names else names[0]
        return KubernetesHandle(self._api, name, agent_id, run_dir, self._poll)

    async def adopt(self, agent_id: str, ref: str, run_dir: Path) -> RunHandle | None:
        return await asyncio.to_thread(self._adopt, agent_id, ref, run_dir)

    def check(self) -> str | None:
        """The API answers and lets us list Jobs in the namespace; kept for 5 s (it is asked per spawn)."""
        at, problem = self._checked
        if time.monotonic() - at < _CHECK_CACHE_SECONDS:
            return problem
        cfg = self.job_settings
        if cfg.pvc_name and (problem := handover_problem(cfg.user, os.geteuid(), os.getegid())):
            self._checked = (time.monotonic(), problem)
            return problem
        try:
            self._api.batch.list_namespaced_job(self._api.namespace, limit=1, _request_timeout=5)
            problem = None
        except RuntimeError_ as exc:
            problem = str(exc)
        except api_errors() as exc:
            where = self._api.api_url or "the configured cluster"
            problem = f"Kubernetes API at {where}: {short_error(exc)}"
        self._checked = (time.monotonic(), problem)
        return problem
