"""Agents as Kubernetes Jobs (AGENT_RUNTIME=kubernetes), through the real server, against the fake
Kubernetes API of tests/support/fake_kubernetes.py (no API server can be had here). Its "kubelet" runs
the pod's command on this host, so a fake CLI script or the real `claude` CLI runs "in the pod"."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.runtimes.k8s_manifest import FEED_PROMPT
from tests.support import fake_anthropic as fm
from tests.support.fake_kubernetes import FakeKubernetes
from tests.support.runtimes import fake_cli
from tests.support.server import Server

NAMESPACE = "agents"
SECRET_NAME = "agent-env"
SECRET_KEY = "sk-ant-from-the-kubernetes-secret-42"
SERVICE_KEY = "sk-ant-service-side-key-never-in-a-job"


@pytest.fixture
def cluster() -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes().start()
    fake.add_secret(NAMESPACE, SECRET_NAME, {"ANTHROPIC_API_KEY": SECRET_KEY})
    yield fake
    fake.stop()


def _env(cluster: FakeKubernetes, claude: str) -> dict[str, str]:
    return {
        "AGENT_RUNTIME": "kubernetes",
        "KUBERNETES_API_URL": cluster.url,
        "KUBERNETES_NAMESPACE": NAMESPACE,
        "KUBERNETES_SECRET_NAME": SECRET_NAME,
        "AGENT_CLAUDE_BIN": claude,
        "AGENT_MEMORY_MB": "512",
        "AGENT_CPUS": "1.5",
        "ANTHROPIC_API_KEY": SERVICE_KEY,
    }


def _stdout(server: Server, agent_id: str) -> list[str]:
    return [ln["content"] for ln in server.logs(agent_id) if ln["stream"] == "stdout"]


def _wait_stdout(server: Server, agent_id: str, n: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(lines := _stdout(server, agent_id)) < n:
        assert time.monotonic() < deadline, f"{len(lines)} lines after {timeout} s\n{server.log()}"
        time.sleep(0.05)
    return lines


def test_job_is_created_streamed_and_adopted_after_a_crash(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, cluster: FakeKubernetes
) -> None:
    script = fake_cli(
        tmp_path,
        'echo "key=${ANTHROPIC_API_KEY#sk-ant-}"\nfor i in $(seq 1 10); do echo line-$i; sleep 0.2; done',
    )
    env = _env(cluster, str(script))
    first = make_server(kill_agents_on_shutdown=False, **env)
    agent = first.spawn("count slowly")
    assert agent["container_id"] == f"k8s-job-agent-{agent['id']}"

    (job,) = cluster.created_jobs
    assert SERVICE_KEY not in json.dumps(job) and SECRET_KEY not in json.dumps(job)
    labels = job["metadata"]["labels"]
    assert labels["orchestrator.agent_id"] == agent["id"]
    assert labels["orchestrator.instance_id"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == 3600
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": SECRET_NAME}}]
    assert container["resources"]["limits"] == {"memory": str(512 * 1024 * 1024), "cpu": "1500m"}
    assert container["command"][:4] == FEED_PROMPT and container["command"][5] == str(script)
    assert container["workingDir"] == agent["workspace"]

    lines = _wait_stdout(first, agent["id"], 3)
    # (a whole key would be redacted in the stored log, so the script prints it without its prefix)
    assert lines[0] == f"key={SECRET_KEY.removeprefix('sk-ant-')}", (
        "the API key reached the pod from the Secret"
    )
    assert first.agent(agent["id"])["status"] == "running"
    first.crash()

    second = make_server(data_dir=first.data_dir, **env)
    done = second.wait_agent(agent["id"], timeout=30)
    assert done["status"] == "completed", done
    assert done["exit_code"] == 0
    stored = _stdout(second, agent["id"])
    assert stored[1:-1] == [f"line-{i}" for i in range(1, 11)], "every line once, across the crash"
    assert stored == (first.data_dir / "runs" / agent["id"] / "stdout").read_text().splitlines()
    assert "adopted agent" in second.log()
    assert len(cluster.created_jobs) == 1


def _big_prompt() -> str:
    """Just under the API's 200,000 characters, over 200 KiB in UTF-8: far past Linux's 128 KiB limit on
    one argument, so it can only reach the CLI as a file."""
    lines, size, i = [], 0, 0
    while size < 199_000:
        line = f"Zeile {i}: Grüße aus dem Prompt, ünïcödé — PROMPT-MARKER\n"
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines)


def test_prompt_reaches_the_pod_by_a_config_map_never_the_pod_spec(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, cluster: FakeKubernetes
) -> None:
    prompt = _big_prompt()
    assert len(prompt.encode()) > 200 * 1024
    script = fake_cli(
        tmp_path,
        'f=$(mktemp)\ncat > "$f"\necho "bytes=$(wc -c < "$f")"\n'
        'echo "sha=$(sha256sum < "$f" | cut -c1-64)"\nrm -f "$f"',
    )
    server = make_server(**_env(cluster, str(script)))
    done = server.wait_agent(server.spawn(prompt)["id"], timeout=60)
    assert done["status"] == "completed", done
    lines = _stdout(server, done["id"])
    assert lines[:2] == [
        f"bytes={len(prompt.encode())}",
        f"sha={hashlib.sha256(prompt.encode()).hexdigest()}",
    ], "the whole prompt reached the CLI's stdin"

    # what anyone with `get pods` or `get jobs` sees: no prompt
    (job,) = cluster.created_jobs
    assert "PROMPT-MARKER" not in json.dumps(job)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert all("PROMPT-MARKER" not in arg for arg in container["command"])
    assert all("PROMPT-MARKER" not in e["value"] for e in container["env"])
    (config_map,) = cluster.created_config_maps
    assert config_map["data"] == {"prompt": prompt}
    assert config_map["immutable"] is True
    job_uid = cluster.jobs[(NAMESPACE, job["metadata"]["name"])]["metadata"]["uid"]
    (owner,) = config_map["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", job["metadata"]["name"], job_uid)

    # and the pod is locked down as Pod Security's "restricted" profile asks
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
        "fsGroup": 1000,
    }
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tmp"]] == {"name": "tmp", "emptyDir": {}}
    assert (
        volumes[mounts[str(server.data_dir / "runs" / done["id"] / "input")]]["configMap"]["name"]
        == config_map["metadata"]["name"]
    )


def test_workspace_on_the_pvc_is_handed_to_the_agent_user_and_taken_back(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, cluster: FakeKubernetes
) -> None:
    data = tmp_path / "pvc"
    script = fake_cli(
        tmp_path, 'cat >/dev/null\necho "owners=$(stat -c %u:%g "$PWD" "$HOME" | tr "\\n" " ")"'
    )
    env = _env(cluster, str(script)) | {"KUBERNETES_WORKSPACE_PVC": "data", "KUBERNETES_PVC_MOUNT": str(data)}
    server = make_server(data_dir=data, **env)
    done = server.wait_agent(server.spawn("own it")["id"], timeout=30)
    assert done["status"] == "completed", done
    assert _stdout(server, done["id"])[0] == "owners=1000:1000 1000:1000 ", "the agent's while it runs"
    for path in (Path(done["workspace"]), server.data_dir / "runs" / done["id"] / "home"):
        assert (path.stat().st_uid, path.stat().st_gid) == (os.geteuid(), os.getegid()), "the service's after"
    pod = cluster.created_jobs[0]["spec"]["template"]["spec"]
    assert "fsGroup" not in pod["securityContext"], "never a recursive chgrp of the whole PVC"


def test_kill_deletes_the_job(make_server, tmp_path: Path, cluster: FakeKubernetes) -> None:  # type: ignore[no-untyped-def]
    script = fake_cli(tmp_path, "trap 'echo got-term; exit 143' TERM\necho started\nsleep 300 &\nwait")
    server = make_server(**_env(cluster, str(script)))
    agent = server.spawn("wait for the kill")
    _wait_stdout(server, agent["id"], 1)
    response = server.client.post(f"/api/agents/{agent['id']}/kill")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "killed"
    job_name = f"agent-{agent['id']}"
    assert ("job", job_name, {"propagationPolicy": "Background"}) in cluster.deletions
    assert (NAMESPACE, job_name) not in cluster.jobs
    assert (NAMESPACE, f"{job_name}-prompt") not in cluster.config_maps, "the prompt went with its Job"
    deadline = time.monotonic() + 10
    while cluster.pods_of(job_name):
        assert time.monotonic() < deadline, "the pod went with its Job"
        time.sleep(0.05)
    assert "got-term" in _stdout(server, agent["id"])


def test_failed_pod_fails_the_agent_with_its_output(
    make_server, tmp_path: Path, cluster: FakeKubernetes
) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "claude"
    script.write_text("#!/bin/sh\necho 'no result here'\necho 'boom' >&2\nexit 3\n")
    script.chmod(0o755)
    server = make_server(**_env(cluster, str(script)))
    done = server.wait_agent(server.spawn("fail")["id"], timeout=30)
    assert done["status"] == "failed"
    assert done["exit_code"] == 3
    assert "without a result line" in done["error"]
    assert _stdout(server, done["id"]) == ["no result here", "boom"]  # one log per container in Kubernetes


def test_real_claude_in_a_pod(
    make_server, fake_model: fm.FakeAnthropic, cluster: FakeKubernetes, base_env
) -> None:  # type: ignore[no-untyped-def]
    marker = fake_model.scenario(
        [
            fm.tool("Write", {"file_path": "{{cwd}}/pod.txt", "content": "from a pod\n"}),
            fm.text("Podded and done."),
        ]
    )
    server = make_server(**_env(cluster, base_env["CLAUDE_BIN"]))
    done = server.wait_agent(server.spawn(f"write {marker}")["id"], timeout=90)
    assert done["status"] == "completed", done
    assert done["metadata"]["result"] == "Podded and done."
    assert (Path(done["workspace"]) / "pod.txt").read_text() == "from a pod\n"
