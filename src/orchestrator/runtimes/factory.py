"""The runtime the settings ask for (AGENT_RUNTIME, AGENT_SANDBOX, limits, image, cluster)."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from orchestrator.domain.egress import EgressPolicy
from orchestrator.runtimes.base import DefaultLimits, Runtime
from orchestrator.runtimes.egress import Egress
from orchestrator.runtimes.ownership import AgentUser, agent_user
from orchestrator.runtimes.sandbox import Visibility
from orchestrator.settings import Settings

RUN_DIR = Path("/run")
CONTROL_SOCKETS = (
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
)
UNSANDBOXED = (
    "agents run as the service's user and see its whole file system: the data directory, the database "
    "(prompts, webhook secrets), other agents' workspaces and the service's HOME; when the service runs as "
    "root they can also read its environment (GITHUB_TOKEN...) from /proc"
)


@dataclass(frozen=True)
class Isolation:
    """How agents are kept from the service: `sandbox` is bwrap, none, docker or kubernetes."""

    sandbox: str
    warning: str | None = None


def default_limits(settings: Settings) -> DefaultLimits:
    """AGENT_MEMORY_MB, AGENT_CPUS, AGENT_PIDS: applied by every runtime where a spec leaves a limit open."""
    memory = settings.agent_memory_mb
    return DefaultLimits(
        memory_bytes=memory * 1024 * 1024 if memory is not None else None,
        cpus=settings.agent_cpus,
        pids=settings.agent_pids,
    )


def container_user(settings: Settings) -> AgentUser:
    """AGENT_CONTAINER_USER, else the service's own user, else (the service is root) 1000:1000."""
    return agent_user(settings.agent_container_user, os.geteuid(), os.getegid())


def egress_policy(settings: Settings) -> EgressPolicy:
    return EgressPolicy.from_settings(settings.anthropic_base_url, settings.agent_egress_allow)


def agents_filtered(runtime: Runtime) -> bool:
    """Whether agents reach the network only through the service's egress proxy: then none of them can
    reach the service's own port."""
    return getattr(runtime, "egress", None) is not None


def egress_state(runtime: Runtime, settings: Settings) -> str:
    """What agents can reach on the network (for /api/health and the start log)."""
    from orchestrator.runtimes.docker import DockerRuntime
    from orchestrator.runtimes.host import HostRuntime

    restricted = "restricted: the model API and AGENT_EGRESS_ALLOW, through the service's proxy"
    if isinstance(runtime, DockerRuntime):
        network = settings.agent_docker_network
        if runtime.egress is not None:
            return restricted
        if network == "host":
            return "OPEN: AGENT_DOCKER_NETWORK=host gives agents the host's whole network and loopback"
        return f"not filtered by the service: Docker network {network!r} decides"
    if isinstance(runtime, HostRuntime):
        if runtime.egress is not None:
            return restricted
        return (
            f"OPEN: AGENT_SANDBOX={settings.agent_sandbox}, agents share the host's network and loopback "
            "(the service's API too)"
        )
    return "not filtered by the service: the cluster's NetworkPolicy decides"


def make_runtime(settings: Settings, instance_id: str) -> Runtime:
    """`instance_id` ties containers and Jobs to this instance; the manager puts it in every spec's labels,
    which the runtimes turn into `orchestrator.instance_id`."""
    defaults = default_limits(settings)
    egress = Egress(egress_policy(settings), settings.data_dir / "egress")
    if settings.agent_runtime == "docker":
        from orchestrator.runtimes.docker import DockerRuntime

        return DockerRuntime(
            image=settings.agent_image,
            base_url=settings.docker_host,
            network_mode=settings.agent_docker_network,
            user=container_user(settings),
            egress=egress if settings.agent_docker_network == "none" else None,
            claude_bin=settings.agent_claude_bin,
            mount_claude=settings.agent_mount_claude,
            defaults=defaults,
        )
    if settings.agent_runtime == "kubernetes":
        from orchestrator.runtimes.k8s_manifest import JobSettings
        from orchestrator.runtimes.kubernetes import KubernetesRuntime

        return KubernetesRuntime(
            JobSettings(
                namespace=settings.kubernetes_namespace,
                image=settings.agent_image,
                secret_name=settings.kubernetes_secret_name,
                pvc_name=settings.kubernetes_workspace_pvc,
                pvc_mount=settings.kubernetes_pvc_mount or settings.data_dir,
                ttl_seconds=settings.kubernetes_job_ttl_seconds,
                claude_bin=settings.agent_claude_bin,
                service_account=settings.kubernetes_agent_service_account,
                user=container_user(settings),
            ),
            api_url=settings.kubernetes_api_url,
            defaults=defaults,
        )
    from orchestrator.runtimes.host import HostRuntime
    from orchestrator.runtimes.sandbox import Bwrap

    if settings.agent_sandbox == "none":
        return HostRuntime(defaults=defaults, warning=f"AGENT_SANDBOX=none: {UNSANDBOXED}")
    sandbox = Bwrap(settings.bwrap_bin, hidden_from_agents(settings))
    if settings.agent_sandbox == "auto" and sandbox.problem is not None:
        warning = f"AGENT_SANDBOX=auto found no working sandbox ({sandbox.problem}): {UNSANDBOXED}"
        return HostRuntime(defaults=defaults, warning=warning)
    if settings.agent_sandbox == "auto":
        no_relay = egress.problem(sandbox.path, as_root=sandbox.as_root)
        if no_relay is not None:
            warning = f"AGENT_SANDBOX=auto: agents are sandboxed but share the host's network ({no_relay})"
            return HostRuntime(sandbox=sandbox, defaults=defaults, warning=warning)
    return HostRuntime(sandbox=sandbox, defaults=defaults, egress=egress)


def isolation(runtime: Runtime) -> Isolation:
    from orchestrator.runtimes.host import HostRuntime

    if isinstance(runtime, HostRuntime):
        return Isolation("bwrap" if runtime.sandbox else "none", runtime.warning)
    return Isolation(runtime.name)


def hidden_from_agents(settings: Settings) -> Visibility:
    """What only the service may read: its data, store, event/project/workspace/run directories, its HOME,
    and the sockets that control the machine's containers."""
    homes = {Path.home(), Path(pwd.getpwuid(os.geteuid()).pw_dir)}
    dirs = [
        settings.data_dir,
        settings.resolved_event_dir,
        settings.resolved_projects_dir,
        settings.resolved_workspaces_dir,
        settings.resolved_runs_dir,
        *sorted(homes),
    ]
    # /run holds the host's service sockets (D-Bus, the user's systemd and ssh-agent, container engines);
    # only the resolver's configuration comes back when /etc/resolv.conf leads there
    dirs.append(RUN_DIR)
    resolver = Path(os.path.realpath("/etc/resolv.conf"))
    readable = (resolver,) if resolver.is_relative_to(RUN_DIR) else ()
    files = [Path(p) for p in CONTROL_SOCKETS]
    if settings.docker_host and settings.docker_host.startswith("unix://"):
        files.append(Path(settings.docker_host.removeprefix("unix://")))
    if not settings.database_url:
        db = settings.database_file
        files += [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]
    return Visibility(hidden_dirs=tuple(dirs), hidden_files=tuple(files), readable=readable)
