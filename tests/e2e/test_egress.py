"""Agents reach only the model API and AGENT_EGRESS_ALLOW (runtimes/egress.py), through the real server,
bubblewrap and the real `claude` CLI against the fake model: the agent plays the attacker with its Bash
tool. Non-loopback targets are only ever asked of the proxy, which refuses them by policy."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.runtimes.egress import INSIDE_DIR
from tests.support import fake_anthropic as fm
from tests.support.decoy import Decoy
from tests.support.runtimes import fake_cli, remove_containers, require_bwrap, require_docker
from tests.support.server import Server, agent_pids, stream_json_lines

POSTGRES_PORT = 55432

# Every listening loopback port the agent can find, plus the ones it knows of: straight, then through
# the proxy it is given; then cloud metadata and a private address through the proxy.
SCAN = r"""
pp=${HTTPS_PROXY##*:}
listed=$(awk 'NR>1 && $4=="0A" {n=split($2,a,":"); print a[n]}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
ports="$(for h in $listed; do echo $((16#$h)); done | sort -un) $KNOWN"
echo "listed: $(echo $ports)"
ask() {
  (exec 3<>/dev/tcp/127.0.0.1/$pp && printf 'CONNECT %s HTTP/1.1\r\n\r\n' "$1" >&3 && head -1 <&3) 2>&1
}
for p in $ports; do
  if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "direct $p OPEN"
  else echo "direct $p refused"; fi
  echo "proxy $p: $(ask 127.0.0.1:$p)"
done
for d in "$EGRESS"/; do
  echo "tried $d"; (touch "$d/x" || ln -s / "$d/evil") 2>/dev/null && echo "wrote $d"
done
for s in /run/docker.sock /var/run/docker.sock /run/postgresql; do [ -e $s ] && echo "visible: $s"; done
for t in 169.254.169.254:80 10.0.0.1:443 metadata.google.internal:80; do echo "proxy $t: $(ask $t)"; done
get="GET http://127.0.0.1:$ALLOWED/hello HTTP/1.1\r\nHost: allowed\r\n\r\n"
echo "allowed: $( (exec 3<>/dev/tcp/127.0.0.1/$pp && printf "$get" >&3 && tail -1 <&3) 2>&1)"
"""


def _tool_output(server: Server, agent_id: str) -> str:
    return " ".join(
        str(block.get("content"))
        for line in stream_json_lines(server.logs(agent_id))
        if line["type"] == "user"
        for block in line["message"]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    )


def _runtime(name: str) -> dict[str, str]:
    if name == "docker":
        return {"AGENT_RUNTIME": "docker", "AGENT_IMAGE": require_docker()}
    require_bwrap()
    return {"AGENT_SANDBOX": "bwrap"}


@pytest.mark.parametrize(
    "runtime", ["bwrap", pytest.param("docker", marks=pytest.mark.xdist_group("docker"))]
)
def test_an_agent_reaches_the_model_and_allowed_hosts_only(  # type: ignore[no-untyped-def]
    make_server, fake_model: fm.FakeAnthropic, runtime: str
) -> None:
    env = _runtime(runtime)
    with Decoy("attacked") as decoy, Decoy("allowed") as allowed:
        server = make_server(**env, AGENT_EGRESS_ALLOW=f"127.0.0.1:{allowed.port}")
        known = f"{server.port} {POSTGRES_PORT} {decoy.port}"
        command = f"KNOWN='{known}' ALLOWED={allowed.port} EGRESS={INSIDE_DIR}\n{SCAN}"
        marker = fake_model.scenario(
            [fm.tool("Bash", {"command": command, "description": "scan"}), fm.text("Scanned.")]
        )
        health = server.client.get("/api/health").json()
        assert health["agent_egress"].startswith("restricted"), health

        agent_id = server.spawn(f"scan the network {marker}")["id"]
        try:
            done = server.wait_agent(agent_id, timeout=120)
        finally:
            if runtime == "docker":
                remove_containers(agent_id)
        out = _tool_output(server, done["id"])
        assert done["status"] == "completed", (done, out)
        assert done["metadata"]["result"] == "Scanned.", "the model calls went through"
        assert len(fake_model.requests_for(marker)) == 2

        listed = out.split("listed:")[1].split("\n")[0].split()
        assert listed[-3:] == known.split() and str(server.port) not in listed[:-3], "host ports are unseen"
        for port in (server.port, POSTGRES_PORT, decoy.port):
            assert f"direct {port} refused" in out, out
            assert f"proxy {port}: HTTP/1.1 403" in out, out
        for target in ("169.254.169.254:80", "10.0.0.1:443", "metadata.google.internal:80"):
            assert f"proxy {target}: HTTP/1.1 403" in out, out
        assert decoy.connections == [], "the decoy was reached"
        assert "visible:" not in out, "the host services' Unix sockets are hidden"
        assert f"tried {INSIDE_DIR}/" in out, out
        assert "wrote" not in out, "the socket directory is read-only to the agent"
        assert "allowed: decoy allowed" in out, out
        assert [c.split(b"\r\n")[0] for c in allowed.connections] == [b"GET /hello HTTP/1.1"]
        assert f"CONNECT 127.0.0.1:{POSTGRES_PORT} refused" in server.log()
        assert agent_pids(agent_id) == [], "the relays ended with the agent"
        assert not (server.data_dir / "egress" / agent_id).exists(), "its socket directory is gone"


def test_without_a_sandbox_health_says_agents_have_the_open_network(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(AGENT_SANDBOX="none")
    health = server.client.get("/api/health").json()
    assert health["agent_egress"].startswith("OPEN: AGENT_SANDBOX=none"), health
    assert "agent network egress: OPEN" in server.log()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AGENT_EGRESS_ALLOW", "example.com:99999"),
        ("AGENT_EGRESS_ALLOW", "*.10.0.0.1"),
        ("ANTHROPIC_BASE_URL", "ftp://x"),
    ],
)
def test_a_wrong_egress_setting_stops_the_start_naming_it(tmp_path: Path, variable: str, value: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "ORCHESTRATOR_DATA_DIR": str(tmp_path), variable: value}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"error: {variable}:"), proc.stderr


def test_an_adopted_agent_reaches_the_network_again_after_a_crash_of_the_service(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path
) -> None:
    require_bwrap()
    with Decoy("allowed") as allowed:
        script = fake_cli(
            tmp_path,
            f"""
get() {{ curl -s -m 5 http://127.0.0.1:{allowed.port}/$1 || echo "failed $1"; }}
echo "before: $(get before)"
while [ ! -e go ]; do sleep 0.1; done
echo "after: $(get after)"
""",
        )
        env = {"AGENT_SANDBOX": "bwrap", "AGENT_EGRESS_ALLOW": f"127.0.0.1:{allowed.port}"}
        first = make_server(kill_agents_on_shutdown=False, CLAUDE_BIN=str(script), **env)
        agent = first.spawn("fetch, then fetch again")
        stdout = first.data_dir / "runs" / agent["id"] / "stdout"
        deadline = time.monotonic() + 60
        while "before:" not in (stdout.read_text() if stdout.exists() else ""):
            assert time.monotonic() < deadline, first.log()
            time.sleep(0.1)
        first.crash()

        second = make_server(data_dir=first.data_dir, CLAUDE_BIN=str(script), **env)
        (Path(agent["workspace"]) / "go").touch()
        done = second.wait_agent(agent["id"], timeout=60)
        assert done["status"] == "completed", done
        out = stdout.read_text()
        assert "before: decoy allowed" in out and "after: decoy allowed" in out, out
        assert [c.split(b" ")[1] for c in allowed.connections] == [b"/before", b"/after"]


def test_the_service_raises_its_descriptor_limit_for_the_proxies(make_server) -> None:  # type: ignore[no-untyped-def]
    """Up to 256 proxied connections an agent, two descriptors each: the soft limit goes to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 1024:
        pytest.skip("the hard limit leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # what the service inherits, as is common
    try:
        server = make_server()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert server.proc is not None
    limits = Path(f"/proc/{server.proc.pid}/limits").read_text().splitlines()
    found = next(line for line in limits if line.startswith("Max open files")).split()[3:5]
    assert found == [str(hard), str(hard)], found
