"""The Kubernetes Job of one agent, built from its spec. Pure: no I/O, no client import.

- `backoffLimit: 0` and `restartPolicy: Never`: an agent run is not retried behind the service's back.
- `ttlSecondsAfterFinished`: the cluster deletes a finished Job after a while; until then a restarted
  service can still read the end of its log and its exit code.
- `activeDeadlineSeconds`: the wall-time limit, also enforced by the cluster (with a margin over the
  service's own timeout, which normally acts first).
- Secrets are never inlined: environment variables whose names look secret (…KEY, …TOKEN, SECRET,
  PASSWORD, CREDENTIAL) are dropped from the spec's environment, and the pod gets them from the
  Kubernetes Secret KUBERNETES_SECRET_NAME through `envFrom.secretRef`.
- Volumes: every path the agent writes (workspace, `--add-dir`s, HOME, CLAUDE_CONFIG_DIR) is mounted at
  the same path as on the service's side, from the PVC KUBERNETES_WORKSPACE_PVC with a `subPath` relative
  to where the service mounts that PVC (KUBERNETES_PVC_MOUNT, default the data directory). Without a PVC
  those paths are an emptyDir: the agent's work then ends with its pod.
- Resources: requests equal limits (memory, CPU). A pids limit is a node setting in Kubernetes
  (`podPidsLimit`), so AGENT_PIDS is not applied to Jobs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.runtimes.base import Limits, RunSpec
from orchestrator.runtimes.sandbox import writable_paths

LABEL_PREFIX = "orchestrator."
AGENT_LABEL = f"{LABEL_PREFIX}agent_id"
CONTAINER = "agent"
DEADLINE_MARGIN_SECONDS = 60
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
_DROPPED_ENV = ("PATH",)
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]+")
_DNS_BAD = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class JobSettings:
    namespace: str
    image: str
    secret_name: str | None
    pvc_name: str | None
    pvc_mount: Path
    ttl_seconds: int
    claude_bin: str | None = None
    service_account: str | None = None
    image_pull_policy: str = "IfNotPresent"


class ManifestError(ValueError):
    pass


def label_value(value: str) -> str:
    """A valid label value: at most 63 of [A-Za-z0-9_.-], starting and ending alphanumeric."""
    cleaned = _LABEL_VALUE_BAD.sub("-", value)[:63].strip("-_.")
    return cleaned or "x"


def job_name(agent_id: str) -> str:
    return ("agent-" + _DNS_BAD.sub("-", agent_id.lower()))[:63].rstrip("-")


def labels_of(spec: RunSpec) -> dict[str, str]:
    labels = {f"{LABEL_PREFIX}{key}": label_value(value) for key, value in spec.labels.items()}
    labels[AGENT_LABEL] = label_value(spec.agent_id)
    labels["app.kubernetes.io/managed-by"] = "orchestrator"
    labels["app.kubernetes.io/component"] = "agent"
    return labels


def selector(agent_id: str) -> str:
    return f"{AGENT_LABEL}={label_value(agent_id)}"


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def pod_env(env: dict[str, str]) -> list[dict[str, str]]:
    kept = {k: v for k, v in env.items() if k not in _DROPPED_ENV and not is_secret_name(k)}
    kept["IS_SANDBOX"] = "1"  # the pod is the sandbox: the CLI may skip permissions as root
    return [{"name": k, "value": v} for k, v in sorted(kept.items())]


def _quantity_cpu(cpus: float) -> str:
    return f"{max(1, round(cpus * 1000))}m"


def resources(limits: Limits) -> dict[str, Any]:
    amounts: dict[str, str] = {}
    if limits.memory_bytes is not None:
        amounts["memory"] = str(limits.memory_bytes)
    if limits.cpus is not None:
        amounts["cpu"] = _quantity_cpu(limits.cpus)
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def _mounts(spec: RunSpec, cfg: JobSettings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    mounts = []
    for path in writable_paths(spec):
        if cfg.pvc_name:
            try:
                sub = path.relative_to(cfg.pvc_mount)
            except ValueError:
                raise ManifestError(
                    f"{path} is not under {cfg.pvc_mount}, where the PVC {cfg.pvc_name!r} is mounted "
                    "(KUBERNETES_PVC_MOUNT)"
                ) from None
        else:
            sub = path.relative_to(path.anchor)
        mounts.append({"name": "work", "mountPath": str(path), "subPath": str(sub)})
    volume: dict[str, Any] = (
        {"name": "work", "persistentVolumeClaim": {"claimName": cfg.pvc_name}}
        if cfg.pvc_name
        else {"name": "work", "emptyDir": {}}
    )
    return mounts, [volume]


def job_manifest(spec: RunSpec, limits: Limits, cfg: JobSettings) -> dict[str, Any]:
    argv = spec.argv_with_prompt()
    if cfg.claude_bin:
        argv[0] = cfg.claude_bin
    labels = labels_of(spec)
    mounts, volumes = _mounts(spec, cfg)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": cfg.image,
        "imagePullPolicy": cfg.image_pull_policy,
        "command": argv,
        "workingDir": str(spec.cwd),
        "env": pod_env(spec.env),
        "volumeMounts": mounts,
    }
    if cfg.secret_name:
        container["envFrom"] = [{"secretRef": {"name": cfg.secret_name}}]
    if res := resources(limits):
        container["resources"] = res
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": volumes,
    }
    if cfg.service_account:
        pod_spec["serviceAccountName"] = cfg.service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(spec.agent_id), "namespace": cfg.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": cfg.ttl_seconds,
            "activeDeadlineSeconds": math.ceil(limits.wall_seconds) + DEADLINE_MARGIN_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
