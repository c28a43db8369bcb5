"""Agents reach only the model API and AGENT_EGRESS_ALLOW: a network namespace with nothing but `lo`, and
a relay out of it into the service's filtering proxy (`egress_proxy.py`).

The agent runs in its own network namespace (bwrap `--unshare-net`; Docker `network_mode="none"`): the
host's loopback (the service's API, PostgreSQL, any other local service) and every other address are out
of reach. Before the CLI starts, a small shell (`RELAY_SCRIPT`) starts `socat` listeners on the
namespace's loopback that relay each connection to a Unix socket in `<data>/egress/<agent id>/`, where
the service accepts it: port PROXY_PORT speaks HTTP proxy (HTTP_PROXY/HTTPS_PROXY point at it), and when
the model API is on loopback its own port is a fixed tunnel to it, so ANTHROPIC_BASE_URL works unchanged. The
shell then execs the CLI: the relays are its children and end with the sandbox or container (bwrap's init
ends with the CLI and the kernel kills the rest of the PID namespace; a container ends with its PID 1).

After a restart the service listens on the same socket paths again when it adopts the agent (`open` is
called again); connections open at the time of the restart are cut.

The socket directory belongs to the service, not to the agent's run directory: a container may write
its run directory, and a `net` it replaced with a symlink would make the service chmod and bind where
the agent chose. The sandbox or container sees the agent's own directory only, read-only, at INSIDE_DIR;
the service binds its sockets through a descriptor of the directory, so neither side meets the 107-byte
limit of a Unix socket's path, however long the data directory's path is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.domain.egress import EgressPolicy
from orchestrator.runtimes.egress_http import HEAD_LIMIT
from orchestrator.runtimes.egress_proxy import AgentProxy, Opener, Resolver, open_tcp, resolve

log = logging.getLogger(__name__)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

PROXY_SOCKET = "proxy.sock"
MODEL_SOCKET = "model.sock"
PROXY_PORT = 3128
# where the agent sees its socket directory: short and fixed, whatever the data directory's path (a Unix
# socket path has at most 107 bytes); under the private /tmp of the sandbox or container
INSIDE_DIR = Path("/tmp/.orchestrator-egress")  # noqa: S108
SOCKET_DIR = Path("/run")  # where host services keep their Unix sockets (/var/run leads here)
_READY_TRIES = 500  # x 10 ms

# $1 socat, $2 socket dir, $3 proxy port, $4 model port (0: none), then `--` and the command.
# A listener takes IPv6 with IPv4 mapped in (a client may try ::1 for localhost), or IPv4 where the
# namespace has no IPv6 (Docker's default); the loop waits until the kernel lists both as listening. One
# awk a look: each process started here delays the CLI (a pipeline and a subshell a port cost 8-10 ms of
# every start, bench_runtimes).
RELAY_SCRIPT = r"""
s=$1; d=$2; p=$3; m=$4; shift 5
command -v "$s" >/dev/null 2>&1 || { echo "agent: no $s for the egress relay" >&2; exit 127; }
relay() {
  "$s" TCP6-LISTEN:$1,ipv6only=0,fork,reuseaddr,backlog=512 UNIX-CONNECT:"$d/$2" ||
  exec "$s" TCP4-LISTEN:$1,bind=127.0.0.1,fork,reuseaddr,backlog=512 UNIX-CONNECT:"$d/$2"
}
relay "$p" proxy.sock </dev/null >/dev/null 2>&1 &
[ "$m" = 0 ] || relay "$m" model.sock </dev/null >/dev/null 2>&1 &
i=0
until awk -v p="$p" -v m="$m" 'BEGIN {
  want[sprintf(":%04X", p)]
  if (m != 0) want[sprintf(":%04X", m)]
  for (t = 0; t < 2; t++) {
    table = t ? "/proc/net/tcp6" : "/proc/net/tcp"
    while ((getline row < table) > 0) {
      split(row, f, " ")
      if (f[4] == "0A") delete want[substr(f[2], length(f[2]) - 4)]
    }
  }
  for (port in want) exit 1
}'; do
  i=$((i + 1))
  [ "$i" -le __TRIES__ ] || { echo "agent: the egress relay did not start" >&2; exit 125; }
  sleep 0.01
done
exec "$@"
""".replace("__TRIES__", str(_READY_TRIES))


@dataclass(frozen=True)
class Relay:
    """The inside half of an agent's egress: where its sockets are and which ports relay to them."""

    net_dir: Path
    inside_dir: Path = INSIDE_DIR
    proxy_port: int = PROXY_PORT
    model_port: int | None = None
    socat: str = "socat"

    def env(self) -> dict[str, str]:
        proxy = f"http://127.0.0.1:{self.proxy_port}"
        # everything through the proxy, loopback too: the namespace's own loopback has nothing on it
        # but the relays (the model API's port among them, for clients that never proxy loopback)
        return {
            "HTTP_PROXY": proxy,
            "HTTPS_PROXY": proxy,
            "http_proxy": proxy,
            "https_proxy": proxy,
            "NO_PROXY": "",
            "no_proxy": "",
        }

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` behind the relay script."""
        ports = [str(self.proxy_port), str(self.model_port or 0)]
        return [
            "/bin/sh",
            "-c",
            RELAY_SCRIPT,
            "egress-relay",
            self.socat,
            str(self.inside_dir),
            *ports,
            "--",
            *argv,
        ]

    def bwrap_args(self, kept: Sequence[Path] = ()) -> list[str]:
        """The network block of a bwrap command line: own namespace, the host services' Unix sockets
        hidden (an empty /run: the Docker socket, D-Bus, PostgreSQL's; unless `kept`, the paths the agent
        is given, lie under it), the relay's sockets, the proxy variables."""
        args = ["--unshare-net"]
        if not any(path == SOCKET_DIR or SOCKET_DIR in path.parents for path in kept):
            args += ["--tmpfs", str(SOCKET_DIR)]
        args += ["--ro-bind", str(self.net_dir), str(self.inside_dir)]
        for name, value in self.env().items():
            args += ["--setenv", name, value]
        return args


class Egress:
    """The service's side: one proxy per agent, listening on the sockets in the agent's run directory."""

    def __init__(
        self,
        policy: EgressPolicy,
        sockets_dir: Path,
        *,
        socat: str | None = None,
        opener: Opener = open_tcp,
        resolver: Resolver = resolve,
    ) -> None:
        self.policy = policy
        self.sockets_dir = sockets_dir
        self.socat = socat or shutil.which("socat") or "socat"
        self._opener = opener
        self._resolver = resolver
        self._open: dict[str, tuple[AgentProxy, list[asyncio.Server]]] = {}
        self._trials: dict[str, str | None] = {}

    def net_dir(self, agent_id: str) -> Path:
        return self.sockets_dir / agent_id

    def relay(self, agent_id: str, socat: str | None = None) -> Relay:
        model = self.policy.model
        proxy_port = PROXY_PORT if model.port != PROXY_PORT else PROXY_PORT + 1
        return Relay(
            self.net_dir(agent_id),
            proxy_port=proxy_port,
            model_port=model.port if model.on_loopback else None,
            socat=socat or self.socat,
        )

    def relayed(self, agent_id: str) -> bool:
        """Whether the agent was started with the relay (its socket directory is still there)."""
        return self.net_dir(agent_id).is_dir()

    async def open(self, agent_id: str, socat: str | None = None) -> Relay:
        """Listens for the agent (again, after a restart) and returns what its sandbox needs."""
        self.close(agent_id)
        relay = self.relay(agent_id, socat)
        self.sockets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        relay.net_dir.mkdir(mode=0o755, exist_ok=True)
        relay.net_dir.chmod(0o755)  # the agent may run under another uid (a container's user)
        proxy = AgentProxy(agent_id, self.policy, opener=self._opener, resolver=self._resolver)
        # bound through a descriptor of the directory, so the data directory's path may be of any length
        folder = os.open(relay.net_dir, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            at = Path(f"/proc/self/fd/{folder}")
            servers = [await self._listen(at / PROXY_SOCKET, proxy.serve_proxy)]
            if relay.model_port:
                servers.append(await self._listen(at / MODEL_SOCKET, proxy.serve_model))
        finally:
            os.close(folder)
        self._open[agent_id] = (proxy, servers)
        return relay

    @staticmethod
    async def _listen(path: Path, handler: Handler) -> asyncio.Server:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # noqa: ASYNC240 - a stale socket of an earlier life; one unlink
        server = await asyncio.start_unix_server(handler, str(path), limit=HEAD_LIMIT)
        os.chmod(path, 0o666)  # noqa: S103 - the agent may run under another uid (a container's user)
        return server

    def close(self, agent_id: str) -> None:
        found = self._open.pop(agent_id, None)
        if found is None:
            return
        proxy, servers = found
        for server in servers:
            server.close()
        proxy.close()

    def remove(self, agent_id: str) -> None:
        """The agent has ended: its socket directory goes (blocking; from the handle's sweep)."""
        shutil.rmtree(self.net_dir(agent_id), ignore_errors=True)

    def problem(self, bwrap: str | None = None, *, as_root: bool = True) -> str | None:
        """What stops the relay on this host: no socat, or (checked once) no network namespace in bwrap."""
        if not shutil.which(self.socat):
            return f"the egress relay needs socat at {self.socat!r} (Debian: apt-get install socat)"
        if bwrap is None:
            return None
        if bwrap not in self._trials:
            trial = [bwrap, *(() if as_root else ("--unshare-user-try",)), "--unshare-net"]
            trial += ["--ro-bind", "/", "/", "--", self.socat, "-V"]
            try:
                done = subprocess.run(
                    trial, capture_output=True, timeout=10, check=False, stdin=subprocess.DEVNULL
                )
                said = done.stderr.decode(errors="replace").strip()[:300]
                self._trials[bwrap] = (
                    None if done.returncode == 0 else f"bwrap --unshare-net fails here: {said}"
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                self._trials[bwrap] = f"bwrap --unshare-net fails here: {exc}"
        return self._trials[bwrap]
