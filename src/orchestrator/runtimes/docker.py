"""Agents as Docker containers (AGENT_RUNTIME=docker), through the Docker SDK for Python.

One container per agent from AGENT_IMAGE. The workspace, any `--add-dir` directories, HOME and
CLAUDE_CONFIG_DIR are bind-mounted at the same paths as on the service's side, so every path the manager
put in the command line and the environment is valid inside. Of the run directory only four files are
mounted, each on its own: `prompt` read-only, `stdout`, `stderr` and `exit_code` writable. A shell wrapper
in the container redirects the CLI's stdout/stderr into those and writes `exit_code` when it ends; the
service reads them by byte offset exactly as for a host agent. The agent can write what those files hold,
as it can print anything, but it cannot replace them (a link to a file of the service's) nor add any.
Nothing is streamed through the engine, so a restarted service re-attaches by container id (`ref` =
`docker-<id>`) and reads on from its stored offset; a container that ended while the service was down
is finished from its recorded exit code.

Network: AGENT_DOCKER_NETWORK, default `none`: the container has only its own loopback, and the egress
relay (`egress.py`) started before the CLI leads through a bind-mounted socket directory to the service's
filtering proxy (the image needs `socat`). `host` shares the host's network (no filtering); any other
value names a Docker network, whose own rules then decide.
Hardening: the agent runs as a non-root user (AGENT_CONTAINER_USER; a root service hands it the paths it
writes and takes them back in `sweep`, see ownership.py), with every capability dropped,
`no-new-privileges`, a read-only root file system and a private tmpfs `/tmp`.
Limits: memory (no extra swap), CPUs and pids from the spec, or the settings' defaults.
Containers carry the labels `orchestrator.agent_id` and `orchestrator.instance_id`, and are removed once
their end has been recorded (`sweep`); `close` alone never stops or removes a running one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.domain.types import LogStream
from orchestrator.runtimes import files
from orchestrator.runtimes.base import (
    MCP_CONFIG_FILE,
    PROMPT_FILE,
    DefaultLimits,
    Limits,
    RunHandle,
    RunSpec,
    RuntimeError_,
    forget_mcp_config,
)
from orchestrator.runtimes.egress import Egress, Relay
from orchestrator.runtimes.ownership import AgentUser, hand_over_recorded, handover_problem, take_back
from orchestrator.runtimes.sandbox import writable_paths

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

log = logging.getLogger(__name__)

LABEL_PREFIX = "orchestrator."
REF_PREFIX = "docker-"
# PID 1 of the container: forwards SIGTERM to the CLI (a PID 1 would otherwise keep it), waits for it to
# end (a trap interrupts `wait`, hence the loop) and records the exit code beside the output. The prompt
# is the CLI's stdin: named on the background command, since sh gives those /dev/null otherwise.
WRAPPER = (
    'd=$1; shift; exec >>"$d/stdout" 2>>"$d/stderr"; '
    "trap 'kill -TERM $c 2>/dev/null' TERM INT HUP; "
    '"$@" <"$d/prompt" & c=$!; wait $c; rc=$?; '
    "while kill -0 $c 2>/dev/null; do wait $c; rc=$?; done; "
    'printf "%s\\n" "$rc" > "$d/exit_code"; exit $rc'
)
# mounted one by one: the run directory itself stays the service's
WRITTEN_FILES = (LogStream.STDOUT.value, LogStream.STDERR.value, files.EXIT_CODE_FILE)
_INSPECT_EVERY_SECONDS = 0.5  # while it runs; the wrapper's exit_code file tells a normal end at once
_CHECK_CACHE_SECONDS = 5.0
_DROPPED_ENV = ("PATH",)
# its pages count against the container's memory limit; exec allowed (the workspace allows it anyway)
TMPFS_OPTIONS = "rw,nosuid,nodev,exec,mode=1777"
TMP = "/tmp"  # noqa: S108 - a private tmpfs inside the container


def container_name(agent_id: str) -> str:
    return f"orchestrator-{agent_id}"


def labels_of(spec: RunSpec) -> dict[str, str]:
    return {f"{LABEL_PREFIX}{key}": value for key, value in spec.labels.items()} | {
        f"{LABEL_PREFIX}agent_id": spec.agent_id
    }


def container_config(
    spec: RunSpec,
    limits: Limits,
    *,
    image: str,
    network_mode: str,
    user: AgentUser,
    claude_bin: str | None = None,
    mount_claude: str | None = None,
    relay: Relay | None = None,
) -> dict[str, Any]:
    """The arguments of `containers.create` for a spec. Pure.

    `claude_bin` replaces argv[0] (the CLI's path inside the image); `mount_claude` is a host file
    bind-mounted read-only at argv[0]'s path instead (any glibc image then runs the service's own CLI).
    """
    argv = list(spec.argv)
    if claude_bin and not mount_claude and spec.program_is_cli:
        argv[0] = claude_bin
    env = {k: v for k, v in spec.env.items() if k not in _DROPPED_ENV}
    env["IS_SANDBOX"] = "1"  # the container is the sandbox
    prompt = str(spec.run_dir / PROMPT_FILE)
    volumes = {prompt: {"bind": prompt, "mode": "ro"}}
    if spec.mcp_config is not None:
        mcp = str(spec.run_dir / MCP_CONFIG_FILE)
        volumes[mcp] = {"bind": mcp, "mode": "ro"}
    for name in WRITTEN_FILES:
        written = str(spec.run_dir / name)
        volumes[written] = {"bind": written, "mode": "rw"}
    for path in writable_paths(spec):
        volumes.setdefault(str(path), {"bind": str(path), "mode": "rw"})
    if mount_claude:
        volumes[mount_claude] = {"bind": argv[0], "mode": "ro"}
    if relay is not None:
        env.update(relay.env())
        argv = relay.wrap(argv)
        volumes[str(relay.net_dir)] = {"bind": str(relay.inside_dir), "mode": "ro"}
    config: dict[str, Any] = {
        "image": image,
        "name": container_name(spec.agent_id),
        "entrypoint": ["/bin/sh", "-c", WRAPPER, "agent"],
        "command": [str(spec.run_dir), *argv],
        "environment": env,
        "working_dir": str(spec.cwd),
        "labels": labels_of(spec),
        "volumes": volumes,
        "network_mode": network_mode,
        "user": str(user),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {TMP: TMPFS_OPTIONS},
        "stdin_open": False,
        "tty": False,
    }
    if limits.memory_bytes is not None:
        config["mem_limit"] = limits.memory_bytes
        config["memswap_limit"] = limits.memory_bytes
        config["tmpfs"] = {TMP: f"{TMPFS_OPTIONS},size={limits.memory_bytes}"}
    if limits.cpus is not None:
        config["nano_cpus"] = int(limits.cpus * 1e9)
    if limits.pids is not None:
        config["pids_limit"] = limits.pids
    return config


def docker_errors() -> tuple[type[Exception], ...]:
    """What the Docker SDK raises when the engine refuses or cannot be reached."""
    import docker.errors
    import requests

    return (docker.errors.DockerException, requests.RequestException)


class DockerHandle:
    def __init__(
        self,
        agent_id: str,
        run_dir: Path,
        container: Container | None,
        pid: int | None = None,
        egress: Egress | None = None,
    ) -> None:
        self._agent_id = agent_id
        self._egress = egress
        self._container = container
        self._container_id = container.id if container is not None else None
        self._files = files.OutputFiles(run_dir)
        self._pid = pid
        self._ended: tuple[bool, int | None] | None = None if container is not None else (True, None)
        self._next_inspect = 0.0
        self._stopping_until = 0.0
        self._errors = docker_errors()

    @property
    def ref(self) -> str:
        return f"{REF_PREFIX}{self._container_id or 'gone'}"

    @property
    def relayed(self) -> bool:
        return self._egress is not None

    @property
    def pid(self) -> int | None:
        return self._pid

    def read(self, stream: LogStream, offset: int, max_bytes: int) -> bytes:
        return self._files.read(stream, offset, max_bytes)

    def poll(self) -> tuple[bool, int | None]:
        """Ended when the wrapper recorded the exit code, or (checked every 0.5 s) the container stopped."""
        if self._ended is not None:
            if self._ended[1] is None:
                self._ended = (True, self._files.exit_code())
            return self._ended
        recorded = self._files.exit_code()
        if recorded is not None:
            self._ended = (True, recorded)
            return self._ended
        now = time.monotonic()
        if now < self._next_inspect or self._container is None:
            return False, None
        self._next_inspect = now + (_INSPECT_EVERY_SECONDS if now > self._stopping_until else 0.02)
        import docker.errors

        try:
            self._container.reload()
        except docker.errors.NotFound:
            self._ended = (True, self._files.exit_code())
            return self._ended
        except self._errors as exc:
            log.warning("agent %s: cannot inspect its container: %s", self._agent_id, exc)
            return False, None
        state = self._container.attrs.get("State", {})
        if state.get("Status") in ("exited", "dead"):
            code = self._files.exit_code()
            self._ended = (True, code if code is not None else state.get("ExitCode"))
            return self._ended
        return False, None

    async def wait(self) -> int | None:
        while True:
            ended, code = self.poll()
            if ended:
                return code
            await asyncio.sleep(0.2)

    def _signal(self, sig: str) -> None:
        if self._container is None:
            return
        self._stopping_until = time.monotonic() + 30  # look closely while it ends
        self._next_inspect = 0.0
        with contextlib.suppress(*self._errors):
            self._container.kill(signal=sig)

    def terminate(self) -> None:
        self._signal("SIGTERM")

    def kill(self) -> None:
        self._signal("SIGKILL")

    def exit_fd(self) -> int | None:
        return None

    def sweep(self) -> None:
        """The run has ended: the container goes (its output and exit code are in the run directory), and
        a root service takes back the paths it handed to the agent."""
        if self._egress is not None:
            self._egress.remove(self._agent_id)
        if self._container is not None:
            self.poll()
            try:
                self._container.remove(force=True)
            except self._errors as exc:
                if "No such container" not in str(exc):
                    log.warning("agent %s: cannot remove its container: %s", self._agent_id, exc)
            self._container = None
        forget_mcp_config(self._files.run_dir)
        take_back(self._files.run_dir)

    def close(self) -> None:
        self._files.close()
        if self._egress is not None:
            self._egress.close(self._agent_id)


class DockerRuntime:
    name = "docker"
    run_files: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        image: str,
        base_url: str | None = None,
        user: AgentUser,
        network_mode: str = "host",
        claude_bin: str | None = None,
        mount_claude: bool = False,
        defaults: DefaultLimits | None = None,
        egress: Egress | None = None,
    ) -> None:
        self.image = image
        self.user = user
        self.egress = egress if network_mode == "none" else None
        self._base_url = base_url or None
        self._network_mode = network_mode
        self._claude_bin = claude_bin
        self._mount_claude = mount_claude
        self._defaults = defaults or DefaultLimits()
        self._client: DockerClient | None = None
        self._checked: tuple[float, str | None] = (0.0, None)

    @property
    def where(self) -> str:
        return self._base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def client(self) -> DockerClient:
        if self._client is None:
            if self.where.startswith("unix://") and not os.path.exists(self.where[len("unix://") :]):
                raise RuntimeError_(f"Docker engine unreachable: no socket at {self.where}")
            try:
                import docker
            except ImportError as exc:
                raise RuntimeError_(
                    "the docker runtime needs the `docker` package: pip install 'orchestrator[docker]'"
                ) from exc
            try:
                self._client = (
                    docker.DockerClient(base_url=self._base_url) if self._base_url else docker.from_env()
                )
            except docker.errors.DockerException as exc:
                raise RuntimeError_(f"Docker engine unreachable at {self.where}: {exc}") from exc
        return self._client

    def _mounted_claude(self, argv0: str) -> str | None:
        if not self._mount_claude:
            return None
        found = argv0 if os.sep in argv0 else shutil.which(argv0)
        if not found or not os.path.isfile(found):
            raise RuntimeError_(f"AGENT_MOUNT_CLAUDE: no CLI at {argv0!r} on this host to mount")
        return os.path.realpath(found)

    def _prepare_files(self, spec: RunSpec) -> None:
        """The files the container mounts one by one, and every path it writes, owned by its user."""
        files.create(spec.run_dir)
        exit_file = spec.run_dir / files.EXIT_CODE_FILE
        os.close(os.open(exit_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600))
        prompt = spec.write_prompt()
        mcp = spec.write_mcp_config()
        written = [spec.run_dir / name for name in WRITTEN_FILES]
        read = [prompt] if mcp is None else [prompt, mcp]
        try:
            hand_over_recorded(spec.run_dir, writable_paths(spec), [*read, *written], self.user)
        except OSError as exc:
            raise RuntimeError_(
                f"cannot hand the agent's files to AGENT_CONTAINER_USER {self.user} "
                f"(the service runs as uid {os.geteuid()}; run it as root or leave the setting unset): {exc}"
            ) from exc

    def _start(self, spec: RunSpec, relay: Relay | None) -> DockerHandle:
        client = self.client()
        self._prepare_files(spec)
        mount = self._mounted_claude(spec.argv[0]) if spec.program_is_cli else None
        argv = spec.argv if mount is None or os.sep in spec.argv[0] else [mount, *spec.argv[1:]]
        config = container_config(
            dataclasses.replace(spec, argv=argv),
            self._defaults.apply(spec.limits),
            image=self.image,
            network_mode=self._network_mode,
            user=self.user,
            claude_bin=self._claude_bin,
            mount_claude=mount,
            relay=relay,
        )
        import docker.errors

        try:
            container = client.containers.create(**config)
            container.start()
            container.reload()
        except docker.errors.ImageNotFound as exc:
            raise RuntimeError_(
                f"image {self.image!r} not found: build deploy/docker/Dockerfile.agent or set AGENT_IMAGE"
            ) from exc
        except docker_errors() as exc:
            with contextlib.suppress(*docker_errors()):
                client.containers.get(container_name(spec.agent_id)).remove(force=True)
            raise RuntimeError_(f"cannot start a container: {exc}") from exc
        pid = container.attrs.get("State", {}).get("Pid") or None
        return DockerHandle(spec.agent_id, spec.run_dir, container, pid, self.egress)

    async def start(self, spec: RunSpec) -> RunHandle:
        # the socat of the relay is the image's own
        relay = await self.egress.open(spec.agent_id, socat="socat") if self.egress else None
        try:
            return await asyncio.to_thread(self._start, spec, relay)
        except BaseException:
            forget_mcp_config(spec.run_dir)
            if self.egress:
                self.egress.close(spec.agent_id)
            raise

    def _adopt(self, agent_id: str, ref: str, run_dir: Path) -> DockerHandle | None:
        if not run_dir.is_dir():
            return None
        if not ref:
            ref = self._labelled(agent_id) or ""
        if not ref.startswith(REF_PREFIX):
            return None
        import docker.errors

        try:
            container = self.client().containers.get(ref[len(REF_PREFIX) :])
        except docker.errors.NotFound:
            # removed while the service was down: finished if it recorded how it ended, else lost
            return (
                DockerHandle(agent_id, run_dir, None)
                if files.recorded_exit_code(run_dir) is not None
                else None
            )
        except (RuntimeError_, *docker_errors()) as exc:  # type: ignore[misc]
            log.warning("agent %s: cannot look up container %s: %s", agent_id, ref, exc)
            return None
        if container.labels.get(f"{LABEL_PREFIX}agent_id") != agent_id:
            return None
        if container.status == "created":  # its start never came (the service ended in between): none ran
            log.info("agent %s: container %s was created but never started: removed", agent_id, ref)
            with contextlib.suppress(*docker_errors()):
                container.remove(force=True)
            return None
        egress = self.egress if self.egress and self.egress.relayed(agent_id) else None
        pid = container.attrs.get("State", {}).get("Pid") or None
        return DockerHandle(agent_id, run_dir, container, pid, egress)

    def _labelled(self, agent_id: str) -> str | None:
        """The container labelled with this agent, for a start the store never heard the end of."""
        try:
            found = self.client().containers.list(
                all=True, filters={"label": f"{LABEL_PREFIX}agent_id={agent_id}"}
            )
        except (RuntimeError_, *docker_errors()) as exc:  # type: ignore[misc]
            log.warning("agent %s: cannot look for its container: %s", agent_id, exc)
            return None
        return f"{REF_PREFIX}{found[0].id}" if len(found) == 1 else None

    async def adopt(self, agent_id: str, ref: str, run_dir: Path) -> RunHandle | None:
        handle = await asyncio.to_thread(self._adopt, agent_id, ref, run_dir)
        if handle is not None and handle.relayed and not handle.poll()[0]:
            assert self.egress is not None
            await self.egress.open(agent_id, socat="socat")  # listens again for the running agent
        return handle

    def check(self) -> str | None:
        """Engine reachable and the image present; the answer is kept for 5 s (it is asked per spawn)."""
        at, problem = self._checked
        if time.monotonic() - at < _CHECK_CACHE_SECONDS:
            return problem
        problem = self._problem()
        self._checked = (time.monotonic(), problem)
        return problem

    def _problem(self) -> str | None:
        if problem := handover_problem(self.user, os.geteuid(), os.getegid()):
            return problem
        try:
            client = self.client()
            client.ping()
        except RuntimeError_ as exc:
            return str(exc)
        except docker_errors() as exc:
            return f"Docker engine unreachable at {self.where}: {exc}"
        import docker.errors

        try:
            client.images.get(self.image)
        except docker.errors.ImageNotFound:
            return (
                f"image {self.image!r} not found in the Docker engine: "
                "build deploy/docker/Dockerfile.agent or set AGENT_IMAGE"
            )
        except docker_errors() as exc:
            return f"cannot inspect image {self.image!r}: {exc}"
        return None

    def labelled(self) -> list[Container]:
        """Every container of this service (any instance), running or not."""
        return list(self.client().containers.list(all=True, filters={"label": f"{LABEL_PREFIX}agent_id"}))

    def remove_leftover(self, container: Container, run_dir: Path) -> None:
        """A container whose agent's end is recorded (`agents/leftovers.py`): removed, the MCP config its
        run was given off the disk, what it was handed taken back."""
        try:
            container.remove(force=True)
        except docker_errors() as exc:
            if "No such container" not in str(exc):
                log.warning("cannot remove container %s: %s", container.id, exc)
        forget_mcp_config(run_dir)
        take_back(run_dir)
