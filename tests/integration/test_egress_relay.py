"""The relay script in a network namespace of its own (real bwrap, real socat): the command starts only
once every relay listens (IPv6 with IPv4 mapped in, or IPv4 where IPv6 fails), and a relay that never
listens ends the start with a clear error."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from orchestrator.runtimes.egress import Relay
from tests.support.runtimes import require_bwrap

LISTEN = "0A"
SHOW_LISTENERS = ["cat", "/proc/net/tcp", "/proc/net/tcp6"]


def _in_own_network(argv: list[str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    sandbox = [require_bwrap(), "--unshare-net", "--unshare-pid", "--die-with-parent"]
    sandbox += ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--"]
    return subprocess.run(
        [*sandbox, *argv], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def _listening_ports(table_text: str) -> set[int]:
    ports = set()
    for row in table_text.splitlines()[1:]:
        fields = row.split()
        if len(fields) > 3 and fields[3] == LISTEN:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _socat() -> str:
    return shutil.which("socat") or "socat"


def _socat_that(tmp_path: Path, case: str) -> str:
    """socat, but for the arguments `case` matches (a shell `case` pattern) it does what `case` says."""
    wrapper = tmp_path / "socat"
    wrapper.write_text(f'#!/bin/sh\ncase "$1" in {case};; esac\nexec {_socat()} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def test_the_command_starts_once_both_relays_listen(tmp_path: Path) -> None:
    relay = Relay(tmp_path, inside_dir=tmp_path, proxy_port=3128, model_port=4000, socat=_socat())
    # cat starts in about a millisecond, a socat takes a few to listen: it sees them only if waited for
    for _ in range(5):
        done = _in_own_network(relay.wrap(SHOW_LISTENERS))
        assert done.returncode == 0, done.stderr
        assert {3128, 4000} <= _listening_ports(done.stdout), done.stdout


def test_without_a_model_port_only_the_proxy_is_waited_for(tmp_path: Path) -> None:
    relay = Relay(tmp_path, inside_dir=tmp_path, proxy_port=3128, socat=_socat())
    done = _in_own_network(relay.wrap(SHOW_LISTENERS))
    assert done.returncode == 0, done.stderr
    assert _listening_ports(done.stdout) == {3128}, done.stdout


def test_where_ipv6_fails_the_relays_listen_on_ipv4(tmp_path: Path) -> None:
    socat = _socat_that(tmp_path, "TCP6-LISTEN*) exit 1")
    relay = Relay(tmp_path, inside_dir=tmp_path, proxy_port=3128, model_port=4000, socat=socat)
    done = _in_own_network([*relay.wrap(["cat", "/proc/net/tcp"])])
    assert done.returncode == 0, done.stderr
    assert {3128, 4000} <= _listening_ports(done.stdout), done.stdout


def test_a_relay_that_never_listens_ends_the_start_though_the_other_does(tmp_path: Path) -> None:
    socat = _socat_that(tmp_path, "*:4000,*) exec sleep 120")
    relay = Relay(tmp_path, inside_dir=tmp_path, proxy_port=3128, model_port=4000, socat=socat)
    done = _in_own_network(relay.wrap(["echo", "the command ran"]))
    assert done.returncode == 125
    assert "the egress relay did not start" in done.stderr
    assert "the command ran" not in done.stdout
