"""The manifests in deploy/kubernetes, validated against the kubernetes client's typed models (strict:
an unknown or misspelt field fails), and checked against what the runtime needs from them."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.runtimes.base import Limits, RunSpec
from orchestrator.runtimes.k8s_manifest import labels_of

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _documents() if d["kind"] == kind]


def _model(doc: dict[str, Any]) -> Any:
    from kubernetes import client

    group_version = doc["apiVersion"].split("/")
    version = group_version[-1].capitalize()
    cls = getattr(client, f"{version}{doc['kind']}")
    return cls.model_validate(doc)


@pytest.mark.parametrize("doc", _documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_is_valid(doc: dict[str, Any]) -> None:
    model = _model(doc)
    assert model.metadata.name == doc["metadata"]["name"]
    if doc["kind"] != "Namespace":
        assert doc["metadata"]["namespace"] == "orchestrator"


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    on_disk = sorted(p.name for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk


def test_role_grants_exactly_what_the_runtime_calls() -> None:
    (role,) = _by_kind("Role")
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    needed = {("batch", "jobs", v) for v in ("create", "get", "list", "delete")}
    needed |= {("", "pods", v) for v in ("get", "list", "delete")} | {("", "pods/log", "get")}
    needed |= {("", "configmaps", "create")}  # the prompt of each Job
    assert needed <= granted
    assert not any(r == "secrets" for _, r, _ in granted), "the orchestrator never reads Secrets"
    (binding,) = _by_kind("RoleBinding")
    (account,) = _by_kind("ServiceAccount")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "orchestrator"}
    ]


def test_deployment_wires_the_kubernetes_runtime_to_the_other_manifests() -> None:
    (deployment,) = _by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AGENT_RUNTIME"] == "kubernetes"
    secrets = {s["metadata"]["name"]: s for s in _by_kind("Secret")}
    assert env["KUBERNETES_SECRET_NAME"] in secrets
    assert "ANTHROPIC_API_KEY" in secrets[env["KUBERNETES_SECRET_NAME"]]["stringData"]
    assert "ANTHROPIC_API_KEY" not in env
    (pvc,) = _by_kind("PersistentVolumeClaim")
    assert env["KUBERNETES_WORKSPACE_PVC"] == pvc["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (data,) = [
        n
        for n, v in volumes.items()
        if v.get("persistentVolumeClaim", {}).get("claimName") == pvc["metadata"]["name"]
    ]
    assert mounts[data] == env["ORCHESTRATOR_DATA_DIR"] == env["KUBERNETES_PVC_MOUNT"]
    assert pod["serviceAccountName"] == _by_kind("ServiceAccount")[0]["metadata"]["name"]
    assert env["HOST"] == "0.0.0.0" and any(
        ref["secretRef"]["name"] in secrets for ref in container["envFrom"]
    ), "a non-loopback HOST needs ORCHESTRATOR_API_TOKEN from a Secret"
    (service,) = _by_kind("Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_settings_accept_the_deployment_environment() -> None:
    from orchestrator.settings import Settings

    (deployment,) = _by_kind("Deployment")
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        if "value" in e
    }
    settings = Settings(**env, KUBERNETES_NAMESPACE="orchestrator")
    assert settings.agent_runtime == "kubernetes"
    assert settings.kubernetes_workspace_pvc == "orchestrator-data"
    assert settings.agent_container_user == "1000:1000", "the uid of Dockerfile.agent's user"
    assert "USER 1000:1000" in (DEPLOY.parent / "docker" / "Dockerfile.agent").read_text()


def _egress_allows(policy: dict[str, Any], address: str, port: int, protocol: str = "TCP") -> bool:
    """Whether an ipBlock rule of the policy lets an agent pod send to address:port (evaluated here; no
    packet is sent)."""
    ip = ipaddress.ip_address(address)
    for rule in policy["spec"]["egress"]:
        ports = {(p["protocol"], p["port"]) for p in rule.get("ports", [])}
        if ports and (protocol, port) not in ports:
            continue
        for peer in rule["to"]:
            block = peer.get("ipBlock")
            if block is None:
                continue
            network = ipaddress.ip_network(block["cidr"])
            if ip.version != network.version or ip not in network:
                continue
            if not any(ip in ipaddress.ip_network(e) for e in block.get("except", [])):
                return True
    return False


def test_network_policy_lets_agent_pods_reach_only_dns_and_public_https() -> None:
    (policy,) = _by_kind("NetworkPolicy")
    spec = RunSpec(
        agent_id="coding-1",
        argv=["claude"],
        env={},
        cwd=Path("/data/ws"),
        run_dir=Path("/data/runs/coding-1"),
        limits=Limits(10),
        labels={"instance_id": "i"},
    )
    selected = policy["spec"]["podSelector"]["matchLabels"]
    assert selected.items() <= labels_of(spec).items(), "it selects the pods of the runtime's Jobs"
    (deployment,) = _by_kind("Deployment")
    service_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert not selected.items() <= service_labels.items(), "and not the orchestrator's own pod"

    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["spec"]["ingress"] == [], "nothing connects to an agent"
    dns, _ = policy["spec"]["egress"]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    assert all("ipBlock" not in peer for peer in dns["to"]), "DNS only to the cluster's DNS pods"
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}

    assert _egress_allows(policy, "160.79.104.10", 443), "a public HTTPS host (the model API)"
    assert _egress_allows(policy, "2607:6bc0::10", 443)
    for address in (
        "169.254.169.254",  # cloud metadata
        "10.96.0.1",  # the Kubernetes API's Service, the orchestrator's Service, other pods
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "127.0.0.1",
        "fd00:ec2::254",  # AWS metadata over IPv6
        "fe80::1",
        "::1",
    ):
        assert not _egress_allows(policy, address, 443), address
    assert not _egress_allows(policy, "160.79.104.10", 80)
    assert not _egress_allows(policy, "160.79.104.10", 22)
    assert not _egress_allows(policy, "160.79.104.10", 443, "UDP")
