"""The runtime the settings ask for (AGENT_RUNTIME, AGENT_SANDBOX, limits, image, cluster)."""

from __future__ import annotations

import os

from orchestrator.domain.egress import EgressPolicy
from orchestrator.runtimes.base import DefaultLimits, Runtime
from orchestrator.runtimes.egress import Egress
from orchestrator.runtimes.ownership import AgentUser, agent_user
from orchestrator.settings import Settings


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


def egress_state(settings: Settings) -> str:
    """What agents can reach on the network with these settings (for /api/health and the start log)."""
    if settings.agent_runtime == "kubernetes":
        return "not filtered by the service: the cluster's NetworkPolicy decides"
    if settings.agent_runtime == "docker":
        network = settings.agent_docker_network
        if network == "none":
            return "restricted: the model API and AGENT_EGRESS_ALLOW, through the service's proxy"
        if network == "host":
            return "OPEN: AGENT_DOCKER_NETWORK=host gives agents the host's whole network and loopback"
        return f"not filtered by the service: Docker network {network!r} decides"
    if settings.agent_sandbox == "none":
        return (
            "OPEN: AGENT_SANDBOX=none, agents share the host's network and loopback (the service's API too)"
        )
    return "restricted: the model API and AGENT_EGRESS_ALLOW, through the service's proxy"


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

    sandbox = Bwrap(settings.bwrap_bin) if settings.agent_sandbox == "bwrap" else None
    return HostRuntime(sandbox=sandbox, defaults=defaults, egress=egress if sandbox else None)
