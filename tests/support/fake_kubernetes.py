"""A fake Kubernetes API server on loopback: the Job, Pod and log endpoints the kubernetes runtime uses.

It answers exactly the requests the official client sends for: create/get/list/delete Jobs (batch/v1),
list/get/delete Pods by label selector, a pod's log (streamed with chunked encoding while it runs), and
create/get/delete ConfigMaps (refused over 1 MiB of data, as the API server does; deleted with the Job
that owns them, as the garbage collector does).
Each created Job gets one pod whose "kubelet" runs the container's command as a host process (after a
short Pending phase, and, like a kubelet, only once every ConfigMap it mounts exists: those are written
at their mountPath on this host, the pod's file system being the host's): env = the container's `env`
plus the data of the Secrets named in `envFrom`, cwd = `workingDir`, stdout and stderr together as the
pod's log, exit code into the container status. So the real `claude` CLI, or a fake script, "runs in a
pod". Deleting a Job (or a pod) stops its process: SIGTERM, then SIGKILL after the grace period (capped
at 2 s). Image, securityContext, other volumes and resources are recorded, not used.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

PENDING_SECONDS = 0.1
MAX_GRACE_SECONDS = 2.0
MAX_CONFIG_MAP_BYTES = 1024 * 1024


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


@dataclass
class FakePod:
    name: str
    namespace: str
    job: str
    labels: dict[str, str]
    container: dict[str, Any]
    volumes: list[dict[str, Any]] = field(default_factory=list)
    created: str = field(default_factory=_now)
    phase: str = "Pending"
    waiting_reason: str = "ContainerCreating"
    started: str | None = None
    exit_code: int | None = None
    finished: str | None = None
    log: bytearray = field(default_factory=bytearray)
    proc: subprocess.Popen[bytes] | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)
    deleted: bool = False

    @property
    def running(self) -> bool:
        return self.phase == "Running"

    def manifest(self) -> dict[str, Any]:
        if self.exit_code is not None:
            state: dict[str, Any] = {
                "terminated": {
                    "exitCode": self.exit_code,
                    "reason": "Completed" if self.exit_code == 0 else "Error",
                    "startedAt": self.started,
                    "finishedAt": self.finished,
                }
            }
        elif self.phase == "Running":
            state = {"running": {"startedAt": self.started}}
        else:
            state = {"waiting": {"reason": self.waiting_reason}}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": self.labels,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, self.name)),
                "creationTimestamp": self.created,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": self.job,
                        "uid": self.job,
                        "controller": True,
                    }
                ],
            },
            "spec": {"restartPolicy": "Never", "containers": [self.container]},
            "status": {
                "phase": self.phase,
                "containerStatuses": [
                    {
                        "name": self.container["name"],
                        "image": self.container.get("image", ""),
                        "imageID": "",
                        "ready": self.phase == "Running",
                        "restartCount": 0,
                        "state": state,
                    }
                ],
            },
        }


class FakeKubernetes:
    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], FakePod] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.config_maps: dict[tuple[str, str], dict[str, Any]] = {}
        self.created_config_maps: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.created_jobs: list[dict[str, Any]] = []
        self.deletions: list[tuple[str, str, dict[str, Any]]] = []
        self.lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-k8s", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeKubernetes:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self.lock:
            pods = list(self.pods.values())
        for pod in pods:
            self._stop_pod(pod, 0)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def add_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.secrets[(namespace, name)] = dict(data)

    def pods_of(self, job: str) -> list[FakePod]:
        with self.lock:
            return [p for p in self.pods.values() if p.job == job]

    # ---- the cluster's side -------------------------------------------------------------------------

    def create_job(self, namespace: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body["metadata"]["name"]
        with self.lock:
            if (namespace, name) in self.jobs:
                return 409, _status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
            job = json.loads(json.dumps(body))
            job["metadata"].update(
                namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=_now(), resourceVersion="1"
            )
            job["status"] = {"active": 1, "startTime": _now()}
            self.jobs[(namespace, name)] = job
            self.created_jobs.append(json.loads(json.dumps(body)))
            template = job["spec"]["template"]
            labels = {**template["metadata"].get("labels", {}), "job-name": name}
            pod = FakePod(
                f"{name}-{secrets.token_hex(3)}",
                namespace,
                name,
                labels,
                template["spec"]["containers"][0],
                template["spec"].get("volumes", []),
            )
            self.pods[(namespace, pod.name)] = pod
        threading.Thread(target=self._kubelet, args=(pod,), daemon=True).start()
        return 201, job

    def create_config_map(self, namespace: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body["metadata"]["name"]
        size = sum(len(k) + len(v.encode()) for k, v in (body.get("data") or {}).items())
        if size > MAX_CONFIG_MAP_BYTES:
            message = f'ConfigMap "{name}" is invalid: []: Too long: must have at most 1048576 bytes'
            return 422, _status(422, "Invalid", message)
        with self.lock:
            if (namespace, name) in self.config_maps:
                return 409, _status(409, "AlreadyExists", f'configmaps "{name}" already exists')
            config_map = json.loads(json.dumps(body))
            meta = config_map["metadata"]
            meta.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=_now())
            self.config_maps[(namespace, name)] = config_map
            self.created_config_maps.append(json.loads(json.dumps(body)))
        return 201, config_map

    def _collect_garbage(self, namespace: str, owner_uid: str) -> None:
        with self.lock:
            for key, config_map in list(self.config_maps.items()):
                owners = config_map["metadata"].get("ownerReferences") or []
                if key[0] == namespace and any(o.get("uid") == owner_uid for o in owners):
                    del self.config_maps[key]

    def _mount_config_maps(self, pod: FakePod) -> bool:
        """Waits (ContainerCreating) for the ConfigMaps the pod mounts and writes them; False if deleted."""
        volumes = {v["name"]: v for v in pod.volumes}
        for mount in pod.container.get("volumeMounts", []):
            source = volumes.get(mount["name"], {}).get("configMap")
            if source is None:
                continue
            while (config_map := self.config_maps.get((pod.namespace, source["name"]))) is None:
                if pod.deleted:
                    return False
                time.sleep(0.02)
            data = config_map.get("data") or {}
            directory = Path(mount["mountPath"])
            directory.mkdir(parents=True, exist_ok=True)
            for item in source.get("items") or [{"key": k, "path": k} for k in data]:
                target = directory / item["path"]
                target.write_text(data[item["key"]], encoding="utf-8")
                target.chmod(item.get("mode", source.get("defaultMode", 0o644)))
        return True

    def _env_of(self, pod: FakePod) -> dict[str, str] | None:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
        for ref in pod.container.get("envFrom", []):
            name = ref.get("secretRef", {}).get("name")
            data = self.secrets.get((pod.namespace, name))
            if data is None:
                return None
            env.update(data)
        for item in pod.container.get("env", []):
            env[item["name"]] = item["value"]
        return env

    def _kubelet(self, pod: FakePod) -> None:
        time.sleep(PENDING_SECONDS)
        if not self._mount_config_maps(pod):
            return
        env = self._env_of(pod)
        if env is None:
            pod.waiting_reason = "CreateContainerConfigError"
            return
        with pod.cond:
            if pod.deleted:
                return
            try:
                pod.proc = subprocess.Popen(
                    pod.container["command"],
                    cwd=pod.container.get("workingDir") or "/",
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                pod.waiting_reason = "RunContainerError"
                pod.log += f"{exc}\n".encode()
                return
            pod.phase = "Running"
            pod.started = _now()
        assert pod.proc.stdout is not None
        while chunk := pod.proc.stdout.read1(65536):
            with pod.cond:
                pod.log += chunk
                pod.cond.notify_all()
        code = pod.proc.wait()
        pod.proc.stdout.close()
        with pod.cond:
            pod.exit_code = 128 - code if code < 0 else code
            pod.finished = _now()
            pod.phase = "Succeeded" if pod.exit_code == 0 else "Failed"
            pod.cond.notify_all()
        with self.lock:
            job = self.jobs.get((pod.namespace, pod.job))
            if job is not None:
                ok = pod.exit_code == 0
                job["status"] = {
                    "startTime": job["status"].get("startTime"),
                    "completionTime": _now() if ok else None,
                    "succeeded" if ok else "failed": 1,
                    "conditions": [
                        {
                            "type": "Complete" if ok else "Failed",
                            "status": "True",
                            "reason": "Completed" if ok else "BackoffLimitExceeded",
                            "message": "" if ok else "Job has reached the specified backoff limit",
                        }
                    ],
                }

    def _stop_pod(self, pod: FakePod, grace: float) -> None:
        with pod.cond:
            pod.deleted = True
            proc = pod.proc
        if proc is None:
            return
        if proc.poll() is None and grace > 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(min(grace, MAX_GRACE_SECONDS))
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def delete_job(self, namespace: str, name: str, options: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            job = self.jobs.pop((namespace, name), None)
            if job is None:
                return 404, _status(404, "NotFound", f'jobs.batch "{name}" not found')
            self.deletions.append(("job", name, options))
            pods = [p for p in self.pods.values() if p.job == name and p.namespace == namespace]
            self._collect_garbage(namespace, job["metadata"]["uid"])
        grace = options.get("gracePeriodSeconds")
        for pod in pods:
            threading.Thread(
                target=self._delete_pod, args=(pod, 30 if grace is None else grace), daemon=True
            ).start()
        return 200, _status(200, "Success", "", kind_details={"name": name, "kind": "jobs"})

    def _delete_pod(self, pod: FakePod, grace: float) -> None:
        self._stop_pod(pod, grace)
        with self.lock:
            self.pods.pop((pod.namespace, pod.name), None)

    def delete_pod(self, namespace: str, name: str, options: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            pod = self.pods.get((namespace, name))
            self.deletions.append(("pod", name, options))
        if pod is None:
            return 404, _status(404, "NotFound", f'pods "{name}" not found')
        grace = options.get("gracePeriodSeconds")
        self._delete_pod(pod, 30 if grace is None else grace)
        return 200, pod.manifest()


def _status(
    code: int, reason: str, message: str, kind_details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if kind_details:
        body["details"] = kind_details
    return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def fake(self) -> FakeKubernetes:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else {}

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        self.fake.requests.append((method, self.path))
        fake = self.fake
        # /apis/batch/v1/namespaces/{ns}/jobs[/{name}]
        if (
            parts[:3] == ["apis", "batch", "v1"]
            and len(parts) >= 6
            and parts[3] == "namespaces"
            and parts[5] == "jobs"
        ):
            ns = parts[4]
            name = parts[6] if len(parts) > 6 else None
            if method == "POST" and name is None:
                return self._send(*fake.create_job(ns, self._body()))
            if method == "GET" and name is None:
                with fake.lock:
                    items = [
                        j
                        for (jns, _), j in fake.jobs.items()
                        if jns == ns and _matches(j["metadata"].get("labels", {}), query.get("labelSelector"))
                    ]
                limit = int(query.get("limit") or 0)
                items = items[:limit] if limit else items
                return self._send(
                    200, {"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": items}
                )
            if method == "GET" and name:
                with fake.lock:
                    job = fake.jobs.get((ns, name))
                if job is None:
                    return self._send(404, _status(404, "NotFound", f'jobs.batch "{name}" not found'))
                return self._send(200, job)
            if method == "DELETE" and name:
                return self._send(*fake.delete_job(ns, name, self._body()))
        # /api/v1/namespaces/{ns}/configmaps[/{name}]
        if (
            parts[:2] == ["api", "v1"]
            and len(parts) in (5, 6)
            and parts[2] == "namespaces"
            and parts[4] == "configmaps"
        ):
            ns = parts[3]
            name = parts[5] if len(parts) > 5 else None
            if method == "POST" and name is None:
                return self._send(*fake.create_config_map(ns, self._body()))
            with fake.lock:
                found = fake.config_maps.get((ns, name or ""))
            if found is None:
                return self._send(404, _status(404, "NotFound", f'configmaps "{name}" not found'))
            if method == "GET":
                return self._send(200, found)
            if method == "DELETE":
                with fake.lock:
                    fake.config_maps.pop((ns, name or ""), None)
                return self._send(200, _status(200, "Success", "", kind_details={"name": name}))
        # /api/v1/namespaces/{ns}/pods[/{name}[/log]]
        if parts[:2] == ["api", "v1"] and len(parts) >= 5 and parts[2] == "namespaces" and parts[4] == "pods":
            ns = parts[3]
            name = parts[5] if len(parts) > 5 else None
            if method == "GET" and name is None:
                with fake.lock:
                    pods = [
                        p.manifest()
                        for (pns, _), p in fake.pods.items()
                        if pns == ns and _matches(p.labels, query.get("labelSelector"))
                    ]
                return self._send(200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods})
            with fake.lock:
                pod = fake.pods.get((ns, name or ""))
            if pod is None:
                return self._send(404, _status(404, "NotFound", f'pods "{name}" not found'))
            if method == "GET" and len(parts) == 7 and parts[6] == "log":
                return self._log(pod, query.get("follow") == "true")
            if method == "GET" and len(parts) == 6:
                return self._send(200, pod.manifest())
            if method == "DELETE" and len(parts) == 6:
                return self._send(*fake.delete_pod(ns, name or "", self._body()))
        self._send(404, _status(404, "NotFound", f"the fake has no {method} {url.path}"))

    def _log(self, pod: FakePod, follow: bool) -> None:
        if pod.phase == "Pending":
            message = f'container "agent" in pod "{pod.name}" is waiting to start: {pod.waiting_reason}'
            return self._send(400, _status(400, "BadRequest", message))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        while True:
            with pod.cond:
                while follow and len(pod.log) == sent and not self._ended(pod):
                    pod.cond.wait(0.5)
                chunk = bytes(pod.log[sent:])
                ended = self._ended(pod) or not follow
            if chunk:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
                sent += len(chunk)
            if ended and sent == len(pod.log):
                break
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    @staticmethod
    def _ended(pod: FakePod) -> bool:
        return pod.exit_code is not None or (pod.deleted and pod.proc is None)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")


def secret_data(data: dict[str, str]) -> dict[str, str]:
    """What a Secret's `data` would hold (base64), for tests that build Secret manifests."""
    return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
