"""Host agents in a bubblewrap sandbox (AGENT_SANDBOX=bwrap), through the real server: a fake CLI script
that probes its box, and the real `claude` CLI against the fake model."""

from __future__ import annotations

import errno
import os
import platform
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import fake_anthropic as fm
from tests.support.runtimes import fake_cli, require_bwrap, require_gdb
from tests.support.server import Server, agent_pids, stream_json_lines


@pytest.fixture(autouse=True)
def _bwrap() -> None:
    require_bwrap()


def _stdout(server, agent_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [ln["content"] for ln in server.logs(agent_id) if ln["stream"] == "stdout"]


def test_sandboxed_agent_writes_only_its_workspace_sees_only_itself_and_is_limited(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path
) -> None:
    data = tmp_path / "data0"
    escapes = [
        "/etc/orchestrator-escape",
        "/root/orchestrator-escape",
        f"{data}/escape.txt",
        f"{data}/runs/x",
    ]
    probe = "\n".join(
        [
            'echo "pid=$$"',
            "echo \"procs=$(ls /proc | grep -c '^[0-9]')\"",
            "ps -e -o pid=,comm= | sed 's/^/ps: /'",
            *[
                f'if (echo x > "{t}") 2>/dev/null; then echo "wrote {t}"; else echo "denied {t}"; fi'
                for t in escapes
            ],
            'echo 7 > "../../runs/$ORCHESTRATOR_AGENT_ID/exit_code" 2>/dev/null || echo "denied exit_code"',
            "echo inside > inside.txt && echo 'wrote workspace'",
            'echo home > "$HOME/home.txt" && echo "wrote home"',
            "id=$ORCHESTRATOR_AGENT_ID",
            "for f in /sys/fs/cgroup/memory/orchestrator/$id/memory.limit_in_bytes"
            ' /sys/fs/cgroup/orchestrator/$id/memory.max; do [ -f $f ] && echo "memlimit=$(cat $f)"; done',
            "for f in /sys/fs/cgroup/pids/orchestrator/$id/pids.max"
            ' /sys/fs/cgroup/orchestrator/$id/pids.max; do [ -f $f ] && echo "pidslimit=$(cat $f)"; done',
            # last: at the pids limit only builtins still run
            "( for i in $(seq 1 100); do sleep 30 & done ) 2>/dev/null",
            "cg=/sys/fs/cgroup",
            "for f in $cg/pids/orchestrator/$id/pids.current $cg/orchestrator/$id/pids.current;"
            " do [ -f $f ] && read n < $f && echo after-forks=$n; done",
        ]
    )
    script = fake_cli(tmp_path, probe)
    server = make_server(
        data_dir=data, CLAUDE_BIN=str(script), AGENT_SANDBOX="bwrap", AGENT_MEMORY_MB="256", AGENT_PIDS="40"
    )
    done = server.wait_agent(server.spawn("probe the sandbox")["id"], timeout=60)
    assert done["status"] == "completed", done
    assert done["exit_code"] == 0
    out = _stdout(server, done["id"])
    values = dict(line.split("=", 1) for line in out if "=" in line and not line.startswith("{"))

    assert int(values["pid"]) <= 3, out  # pid 1 is bwrap's init: an own PID namespace
    ps = [line for line in out if line.startswith("ps: ")]
    # only its own processes: the relay's readiness loop may use a few pids more on a slow host
    assert 0 < len(ps) < 20, ps
    assert {line.split()[2] for line in ps} <= {"bwrap", "claude", "sh", "socat", "ps", "sed"}, ps
    assert not any("python" in line or "orchestrator" in line for line in ps), ps

    for target in escapes:
        assert not Path(target).exists(), f"{target} was written from the sandbox"
    assert f"denied {escapes[0]}" in out and f"denied {escapes[1]}" in out  # read-only root
    assert (Path(done["workspace"]) / "inside.txt").read_text() == "inside\n"
    assert "wrote home" in out
    assert (data / "runs" / done["id"] / "exit_code").read_text().strip() == "0"

    if os.geteuid() == 0:
        assert values["memlimit"] == str(256 * 1024 * 1024), out
        assert values["pidslimit"] == "40", out
        assert int(values["after-forks"]) <= 40, out
        assert not any(p.name == done["id"] for p in Path("/sys/fs/cgroup").glob("*/orchestrator/*"))
    assert agent_pids(done["id"]) == []


def test_sandboxed_agent_gets_sigterm_inside_and_is_killed(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = fake_cli(tmp_path, "trap 'echo got-term; exit 143' TERM\necho started\nsleep 300 &\nwait")
    server = make_server(CLAUDE_BIN=str(script), AGENT_SANDBOX="bwrap")
    agent = server.spawn("wait for the kill")
    deadline = time.monotonic() + 20
    while "started" not in _stdout(server, agent["id"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    response = server.client.post(f"/api/agents/{agent['id']}/kill")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "killed"
    assert time.monotonic() - started < 2.5, "SIGTERM reached the agent: no wait for the kill grace"
    assert "got-term" in _stdout(server, agent["id"])
    assert agent_pids(agent["id"]) == []


def test_sandboxed_agent_survives_a_crash_of_the_service_and_is_adopted(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = fake_cli(tmp_path, "for i in $(seq 1 12); do echo line-$i; sleep 0.2; done")
    first = make_server(CLAUDE_BIN=str(script), AGENT_SANDBOX="bwrap", kill_agents_on_shutdown=False)
    agent = first.spawn("count slowly")
    deadline = time.monotonic() + 20
    while len(_stdout(first, agent["id"])) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.crash()

    second = make_server(data_dir=first.data_dir, CLAUDE_BIN=str(script), AGENT_SANDBOX="bwrap")
    done = second.wait_agent(agent["id"], timeout=30)
    assert done["status"] == "completed", done
    stored = _stdout(second, agent["id"])
    assert stored[:-1] == [f"line-{i}" for i in range(1, 13)]
    run_dir = first.data_dir / "runs" / agent["id"]
    assert stored == (run_dir / "stdout").read_text().splitlines()
    assert "adopted agent" in second.log()


def test_real_claude_in_the_sandbox(make_server, fake_model: fm.FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    marker = fake_model.scenario(
        [
            fm.tools(
                [
                    ("Write", {"file_path": "{{cwd}}/sandboxed.txt", "content": "from the sandbox\n"}),
                    (
                        "Bash",
                        {
                            "command": "echo x > /etc/claude-escape; echo procs=$(ls /proc | grep -c ^[0-9])",
                            "description": "probe",
                        },
                    ),
                ]
            ),
            fm.text("Sandboxed and done."),
        ]
    )
    server = make_server(AGENT_SANDBOX="bwrap")
    done = server.wait_agent(server.spawn(f"write a file {marker}")["id"], timeout=90)
    assert done["status"] == "completed", done
    assert done["metadata"]["result"] == "Sandboxed and done."
    assert (Path(done["workspace"]) / "sandboxed.txt").read_text() == "from the sandbox\n"
    assert not Path("/etc/claude-escape").exists()
    results = " ".join(
        str(b.get("content"))
        for o in stream_json_lines(server.logs(done["id"]))
        if o["type"] == "user"
        for b in o["message"]["content"]
        if isinstance(b, dict) and b.get("type") == "tool_result"
    )
    assert "Read-only file system" in results, results
    procs = int(results.split("procs=")[1].split()[0].strip("\\n'\""))
    assert procs < 15, results  # the CLI, its shell and a few helpers: nothing of the host
    assert agent_pids(done["id"]) == []


def _pids_running(command: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            state = Path(f"/proc/{name}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, ValueError):
            continue
        if cmdline == command and state != "Z":
            found.append(int(name))
    return found


def test_killing_a_sandboxed_agent_ends_a_daemonised_grandchild_that_dropped_the_marker(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path
) -> None:
    daemon = f"sleep 1000.{secrets.randbelow(10**9)}"
    script = fake_cli(
        tmp_path,
        f"setsid env -i /bin/sh -c '{daemon} </dev/null >/dev/null 2>&1 &'\necho started\nsleep 300 &\nwait",
    )
    server = make_server(CLAUDE_BIN=str(script), AGENT_SANDBOX="bwrap")
    agent = server.spawn("leave a daemon behind")
    try:
        deadline = time.monotonic() + 20
        while "started" not in _stdout(server, agent["id"]) or not _pids_running(daemon):
            assert time.monotonic() < deadline, "the daemon never started"
            time.sleep(0.05)
        [pid] = _pids_running(daemon)
        assert pid not in agent_pids(agent["id"]), "the daemon dropped the agent's marker"
        response = server.client.post(f"/api/agents/{agent['id']}/kill")
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 10
        while _pids_running(daemon):
            assert time.monotonic() < deadline, "the daemonised grandchild outlived its killed agent"
            time.sleep(0.05)
    finally:
        for pid in _pids_running(daemon):
            os.kill(pid, signal.SIGKILL)


TRACKING_GROUPS = Path("/sys/fs/cgroup/pids/orchestrator")


def _run_to_its_end(make_server, tmp_path: Path, body: str, sandbox: str) -> tuple[Server, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A fake CLI running `body` under AGENT_SANDBOX=`sandbox`, once it has completed."""
    server = make_server(CLAUDE_BIN=str(fake_cli(tmp_path, body)), AGENT_SANDBOX=sandbox)
    done = server.wait_agent(server.spawn("a run")["id"])
    assert done["status"] == "completed", done
    return server, done


def _still_running(command: str) -> list[str]:
    """The pids of the processes whose command line is `command`."""
    return [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _command_line(p) == command]


def _command_line(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _needs_tracking_groups() -> None:
    if os.geteuid() != 0 or Path("/sys/fs/cgroup/cgroup.controllers").exists():
        pytest.skip("the agent's tracking cgroup is made on cgroup v1, as root")


@pytest.mark.parametrize("sandbox", ["bwrap", "none"])
def test_what_an_agent_leaves_running_is_gone_when_its_end_is_told(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path, sandbox: str
) -> None:
    # a daemon in a session of its own and a plain background child, both outliving the CLI: in the
    # sandbox the PID namespace ends with the CLI and takes them along; without it the sweep's scan of
    # every process for the agent's marker finds and kills them
    body = "setsid sleep 300 </dev/null >/dev/null 2>&1 &\nsleep 301 </dev/null >/dev/null 2>&1 &"
    _server, done = _run_to_its_end(make_server, tmp_path, body, sandbox)
    assert agent_pids(done["id"]) == []


def test_what_an_agent_hides_from_the_marker_scan_is_gone_when_its_end_is_told(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path
) -> None:
    # a daemon started with an empty environment carries no marker, as one whose environment the agent
    # wrote over would not: the scan cannot find it, the agent's cgroup holds it all the same
    _needs_tracking_groups()
    body = "env -i setsid sleep 302 </dev/null >/dev/null 2>&1 &"
    _server, done = _run_to_its_end(make_server, tmp_path, body, "none")
    assert _still_running("sleep 302") == [], "a process of the agent outlived its end"
    assert not (TRACKING_GROUPS / done["id"]).exists()


def test_a_sandboxed_agent_cannot_reach_its_sandboxs_init(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # the agent's namespace dies with its CLI only by the parent-death signal of bwrap's init (pid 1 of
    # the sandbox), which tells bwrap of the CLI's end on an eventfd. Traced, written to or robbed of
    # that descriptor (pidfd_getfd), it would keep the sandbox and a daemon alive past the end. Every way
    # in is refused; a debugger still attaches to the agent's own processes
    if platform.machine() != "x86_64":
        pytest.skip("the calls are made by their x86_64 numbers")
    gdb = require_gdb()
    body = (
        "setsid sleep 303 </dev/null >/dev/null 2>&1 &\n"
        f"{gdb} -p 1 -batch -ex 'call (int)prctl(1,0,0,0,0)' >/dev/null 2>&1 && echo cleared\n"
        "perl -e 'syscall(101, 16, 1, 0, 0) == 0 and print \"attached\\n\"'\n"  # PTRACE_ATTACH
        "perl -e 'syscall(101, 16, 1 + 2**32, 0, 0) == 0 and print \"attached-high\\n\"'\n"
        "perl -e 'syscall(311, 1, 0, 0, 0, 0, 0) == 0 and print \"vm-written\\n\"'\n"
        "perl -e 'syscall(434, 1, 0) >= 0 and print \"pidfd\\n\"'\n"
        'perl -e \'syscall(438, -1, 0, 0); print "getfd errno=", $!+0, "\\n"\'\n'  # EBADF unfiltered
        "for m in /proc/1/mem /proc/1/task/1/mem; do"
        ' perl -e \'open(my $f, "+<", $ARGV[0]) and print "opened $ARGV[0]\\n"\' $m; done\n'
        "sleep 30 & child=$!\n"
        f"{gdb} -p $child -batch -ex 'info inferiors' 2>/dev/null | grep -q process && echo debugged-own\n"
        "kill $child\n"
        "echo tried"
    )
    server, done = _run_to_its_end(make_server, tmp_path, body, "bwrap")
    out = _stdout(server, done["id"])
    assert "tried" in out and "debugged-own" in out and f"getfd errno={errno.EPERM}" in out, out
    for said in ("cleared", "attached", "attached-high", "vm-written", "pidfd"):
        assert said not in out, out
    assert not [line for line in out if line.startswith("opened")], out
    assert _still_running("sleep 303") == [], "a process of the agent outlived its end"


def test_a_sandboxed_agent_cannot_take_a_process_out_of_its_group(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path
) -> None:
    # the sweep of a sandboxed agent in a group of its own trusts that group to hold every process of
    # the agent, and no longer scans the host for the marker: an agent that starts a daemon without the
    # marker and tries every way out of its group loses it all
    _needs_tracking_groups()
    own = '/sys/fs/cgroup/pids/orchestrator/"$ORCHESTRATOR_AGENT_ID"'
    body = (
        "env -i setsid sleep 307 </dev/null >/dev/null 2>&1 &\n"
        "pid=$!\n"
        "for f in /sys/fs/cgroup/pids/cgroup.procs /sys/fs/cgroup/pids/tasks"
        " /sys/fs/cgroup/pids/orchestrator/cgroup.procs; do"
        ' echo $pid > $f 2>/dev/null && echo "moved to $f"; done\n'
        f"mkdir {own}/out 2>/dev/null && echo made-a-group\n"
        "mkdir -p /tmp/cg && mount -t cgroup -o pids none /tmp/cg 2>/dev/null && echo mounted\n"
        "echo tried"
    )
    server, done = _run_to_its_end(make_server, tmp_path, body, "bwrap")
    out = _stdout(server, done["id"])
    assert "tried" in out, out
    assert "moved" not in out and "made-a-group" not in out and "mounted" not in out, out
    assert _still_running("sleep 307") == [], "a process of the agent outlived its end"
    assert not (TRACKING_GROUPS / done["id"]).exists()


def test_a_sandboxed_agent_cannot_start_a_child_in_a_group_of_its_choosing(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path
) -> None:
    # clone3 with CLONE_INTO_CGROUP takes a group's descriptor, which the read-only /sys still gives: on
    # cgroup v2 a child would start outside the agent's group and its limits. The sandbox answers clone3
    # with ENOSYS (the C library then falls back to clone, as under Docker's default profile); a plain
    # fork still works
    body = "perl -e 'syscall(435, 0, 0); print \"clone3 errno=\", $!+0, \"\\n\"'\nsh -c 'echo forked-child'"
    server, done = _run_to_its_end(make_server, tmp_path, body, "bwrap")
    out = _stdout(server, done["id"])
    assert f"clone3 errno={errno.ENOSYS}" in out and "forked-child" in out, out


def test_a_sandboxed_agent_cannot_make_a_user_namespace(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # in one it would have every capability again: mount its cgroup hierarchies, move its processes out
    # of its group, lift its limits or freeze other groups
    body = "unshare -U -m -C true 2>/dev/null && echo userns-made || echo userns-refused"
    server, done = _run_to_its_end(make_server, tmp_path, body, "bwrap")
    assert "userns-refused" in _stdout(server, done["id"])


def test_a_process_moved_to_a_group_below_the_agents_own_is_gone_at_its_end(  # type: ignore[no-untyped-def]
    make_server, tmp_path: Path
) -> None:
    # what a user namespace let a sandboxed agent do (mount its hierarchy, make a group below its own,
    # move its processes there), done here without the sandbox, which no longer allows it
    _needs_tracking_groups()
    group = f'{TRACKING_GROUPS}/"$ORCHESTRATOR_AGENT_ID"'
    body = (
        "env -i setsid sleep 306 </dev/null >/dev/null 2>&1 &\n"
        f"mkdir {group}/hide && echo $! > {group}/hide/cgroup.procs && echo hidden"
    )
    server, done = _run_to_its_end(make_server, tmp_path, body, "none")
    assert "hidden" in _stdout(server, done["id"])
    assert _still_running("sleep 306") == [], "a process of the agent outlived its end"
    assert not (TRACKING_GROUPS / done["id"]).exists()
