"""The Kubernetes Job of one agent, built from its spec. Pure: no I/O, no client import.

- `backoffLimit: 0` and `restartPolicy: Never`: an agent run is not retried behind the service's back.
- `ttlSecondsAfterFinished`: the cluster deletes a finished Job after a while; until then a restarted
  service can still read the end of its log and its exit code.
- `activeDeadlineSeconds`: the wall-time limit, also enforced by the cluster (with a margin over the
  service's own timeout, which normally acts first).
- Secrets are never inlined (the pod spec is readable by anyone who can get pods): of the spec's
  environment only an allow-list of names known to hold no secret is written into the Job (paths,
  locale, the CLI's switches and model names, ANTHROPIC_BASE_URL when it carries no user, password or
  query), and never a name that looks secret (…KEY, …TOKEN, SECRET, PASSWORD, CREDENTIAL). Everything
  else (API keys, ANTHROPIC_CUSTOM_HEADERS, cloud credentials) reaches the pod only from the Kubernetes
  Secret KUBERNETES_SECRET_NAME through `envFrom.secretRef`.
- Volumes: every path the agent writes (workspace, `--add-dir`s, HOME, CLAUDE_CONFIG_DIR) is mounted at
  the same path as on the service's side, from the PVC KUBERNETES_WORKSPACE_PVC with a `subPath` relative
  to where the service mounts that PVC (KUBERNETES_PVC_MOUNT, default the data directory). Without a PVC
  those paths are an emptyDir: the agent's work then ends with its pod.
- Resources: requests equal limits (memory, CPU). A pids limit is a node setting in Kubernetes
  (`podPidsLimit`), so AGENT_PIDS is not applied to Jobs.
- The prompt is not in the pod spec (where `get pods` shows it, and where one argument over 128 KiB
  cannot run): it is the ConfigMap `<job>-prompt`, owned by the Job (the cluster deletes it with the
  Job), mounted read-only at `<run_dir>/input` and fed to the CLI on stdin by `sh`.
- Hardened as Pod Security's `restricted` profile asks: a non-root uid:gid (AGENT_CONTAINER_USER), no
  privilege escalation, every capability dropped, the RuntimeDefault seccomp profile, a read-only root
  file system with an emptyDir `/tmp`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.runtimes.base import Limits, RunSpec
from orchestrator.runtimes.ownership import DEFAULT_AGENT_USER, AgentUser
from orchestrator.runtimes.procfs import MARKER_VARIABLE
from orchestrator.runtimes.sandbox import writable_paths

LABEL_PREFIX = "orchestrator."
AGENT_LABEL = f"{LABEL_PREFIX}agent_id"
CONTAINER = "agent"
DEADLINE_MARGIN_SECONDS = 60
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
_DROPPED_ENV = ("PATH",)
INLINE_NAMES = frozenset(
    {
        "HOME",
        "CLAUDE_CONFIG_DIR",
        MARKER_VARIABLE,
        "LANG",
        "LC_ALL",
        "TZ",
        "TERM",
        "NO_COLOR",
        "SHELL",
        "DISABLE_TELEMETRY",
        "DISABLE_AUTOUPDATER",
        "DISABLE_ERROR_REPORTING",
        "GIT_TERMINAL_PROMPT",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "ANTHROPIC_MODEL",
        "ANTHROPIC_SMALL_FAST_MODEL",
        "ANTHROPIC_DEFAULT_OPUS_MODEL",
        "ANTHROPIC_DEFAULT_SONNET_MODEL",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL",
        "ANTHROPIC_VERTEX_PROJECT_ID",
        "AWS_REGION",
        "CLOUD_ML_REGION",
    }
)
INLINE_PREFIXES = ("CLAUDE_CODE_",)  # the CLI's switches (a secret-looking one is still refused)
URL_NAMES = frozenset({"ANTHROPIC_BASE_URL", "ANTHROPIC_BEDROCK_BASE_URL", "ANTHROPIC_VERTEX_BASE_URL"})
PROMPT_KEY = "prompt"
PROMPT_DIR = "input"  # under the run directory's path, which the pod does not otherwise mount
# argv of the container: the prompt file on stdin, then the CLI's own command line
FEED_PROMPT = ["/bin/sh", "-c", 'p=$1; shift; exec "$@" <"$p"', "agent"]
TMP = "/tmp"  # noqa: S108 - an emptyDir of the pod
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
    user: AgentUser = DEFAULT_AGENT_USER


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


def _plain_url(value: str) -> bool:
    """A URL with nothing secret in it: no user, no password, no query."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return not (parts.username or parts.password or parts.query)


def inlined(name: str, value: str) -> bool:
    """Whether a variable may be written into the Job (else only the Secret can give it)."""
    if is_secret_name(name):
        return False
    if name in URL_NAMES:
        return _plain_url(value)
    return name in INLINE_NAMES or name.startswith(INLINE_PREFIXES)


def pod_env(env: dict[str, str]) -> list[dict[str, str]]:
    kept = {k: v for k, v in env.items() if k not in _DROPPED_ENV and inlined(k, v)}
    kept["IS_SANDBOX"] = "1"  # the pod is the sandbox
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


def prompt_name(agent_id: str) -> str:
    return f"{job_name(agent_id)}-prompt"


def prompt_path(spec: RunSpec) -> Path:
    """Where the pod reads its prompt (the ConfigMap's mount)."""
    return spec.run_dir / PROMPT_DIR / PROMPT_KEY


def prompt_config_map(spec: RunSpec, cfg: JobSettings, job_uid: str) -> dict[str, Any]:
    """The ConfigMap of the prompt, owned by the Job `job_uid`: it goes when the Job goes."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": prompt_name(spec.agent_id),
            "namespace": cfg.namespace,
            "labels": labels_of(spec),
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": job_name(spec.agent_id), "uid": job_uid}
            ],
        },
        "immutable": True,
        "data": {PROMPT_KEY: spec.prompt},
    }


def security_contexts(user: AgentUser) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the pod's, the container's)."""
    pod = {
        "runAsNonRoot": True,
        "runAsUser": user.uid,
        "runAsGroup": user.gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return pod, container


def job_manifest(spec: RunSpec, limits: Limits, cfg: JobSettings) -> dict[str, Any]:
    argv = list(spec.argv)
    if cfg.claude_bin:
        argv[0] = cfg.claude_bin
    labels = labels_of(spec)
    mounts, volumes = _mounts(spec, cfg)
    mounts += [
        {"name": "prompt", "mountPath": str(prompt_path(spec).parent), "readOnly": True},
        {"name": "tmp", "mountPath": TMP},
    ]
    volumes += [
        {
            "name": "prompt",
            "configMap": {
                "name": prompt_name(spec.agent_id),
                "items": [{"key": PROMPT_KEY, "path": PROMPT_KEY}],
                "defaultMode": 0o444,
            },
        },
        {"name": "tmp", "emptyDir": {}},
    ]
    pod_security, container_security = security_contexts(cfg.user)
    if not cfg.pvc_name:
        pod_security["fsGroup"] = cfg.user.gid  # the emptyDir "work" becomes the agent's group's
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": cfg.image,
        "imagePullPolicy": cfg.image_pull_policy,
        "command": [*FEED_PROMPT, str(prompt_path(spec)), *argv],
        "workingDir": str(spec.cwd),
        "env": pod_env(spec.env),
        "volumeMounts": mounts,
        "securityContext": container_security,
    }
    if cfg.secret_name:
        container["envFrom"] = [{"secretRef": {"name": cfg.secret_name}}]
    if res := resources(limits):
        container["resources"] = res
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security,
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
