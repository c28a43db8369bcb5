"""Who a containerised agent runs as, and handing it the paths it must write.

Docker containers and Kubernetes pods run the agent as a non-root uid:gid. When the service runs as that
user already, its files are the agent's; when the service is root it gives the agent's paths (workspace,
`--add-dir`s, HOME, CLAUDE_CONFIG_DIR, the output files) to that user before the agent starts.

Once the run has ended (the runtime's `sweep`) a root service takes the paths back, as recorded in the
run directory's HANDED_OVER_FILE (out of the agent's reach), so that its own later work in them (git
refuses a repository owned by another user) finds its own files.

The walk never follows a symbolic link (a workspace may hold links an earlier agent planted, pointing
anywhere on the service's side), and leaves alone files with more than one hard link (`git clone
--local` shares object files with the service's project copy; git never rewrites them in place).
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_AGENT_UID = 1000
HANDED_OVER_FILE = "handed_over.json"
_RECORD_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class AgentUser:
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid}"


DEFAULT_AGENT_USER = AgentUser(DEFAULT_AGENT_UID, DEFAULT_AGENT_UID)


def parse_user(text: str) -> AgentUser:
    """`uid` or `uid:gid`, numeric, not root. ValueError says what is wrong."""
    uid_text, sep, gid_text = text.strip().partition(":")
    if not uid_text.isdigit() or (sep and not gid_text.isdigit()):
        raise ValueError(f"must be a numeric uid or uid:gid, got {text!r}")
    uid = int(uid_text)
    gid = int(gid_text) if gid_text else uid
    if uid == 0 or gid == 0:
        raise ValueError("must not be root (uid or gid 0): agents are untrusted")
    return AgentUser(uid, gid)


def agent_user(configured: str | None, euid: int, egid: int) -> AgentUser:
    """The configured user; else the service's own user; else (the service is root) 1000:1000."""
    if configured:
        return parse_user(configured)
    if euid != 0 and egid != 0:
        return AgentUser(euid, egid)
    return DEFAULT_AGENT_USER


def handover_problem(user: AgentUser, euid: int, egid: int) -> str | None:
    """None when a service running as euid:egid can give its agents' paths to `user`, else why not."""
    if euid == 0 or (euid, egid) == (user.uid, user.gid):
        return None
    return (
        f"AGENT_CONTAINER_USER is {user} but the service runs as {euid}:{egid}, which cannot hand the "
        "agent's workspace to another user: run the service as root or leave AGENT_CONTAINER_USER unset"
    )


def _give(path: Path | str, st: os.stat_result, user: AgentUser) -> None:
    if (st.st_uid, st.st_gid) == (user.uid, user.gid):
        return
    if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
        return
    os.lchown(path, user.uid, user.gid)


def _refuse_odd(trees: list[Path]) -> None:
    for top in trees:
        if not top.is_absolute() or len(top.parts) < 3:
            raise PermissionError(f"refusing to change the owner of {top}: not a path of the service's")


def hand_over(trees: Iterable[Path], single_files: Iterable[Path], user: AgentUser) -> None:
    """Makes `user` the owner of each tree (recursively) and each file. Raises OSError."""
    for path in single_files:
        _give(path, os.lstat(path), user)
    trees = list(trees)
    _refuse_odd(trees)
    for top in trees:
        st = os.lstat(top)
        if not stat.S_ISDIR(st.st_mode):
            continue  # a link or a file where a directory should be: not ours to follow
        _give(top, st, user)
        for root, dirs, names in os.walk(top, followlinks=False):
            for name in (*dirs, *names):
                entry = os.path.join(root, name)
                _give(entry, os.lstat(entry), user)


def hand_over_recorded(run_dir: Path, trees: list[Path], single_files: list[Path], user: AgentUser) -> None:
    """hand_over, first noting the trees in the run directory when the service is root (to take back)."""
    _refuse_odd(trees)
    if os.geteuid() == 0 and (os.getuid(), os.getgid()) != (user.uid, user.gid):
        record = run_dir / HANDED_OVER_FILE
        fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump([str(t) for t in trees], f)
    hand_over(trees, single_files, user)


def take_back(run_dir: Path) -> None:
    """The trees handed to an agent that has ended, back to the service's own user. Never raises."""
    record = run_dir / HANDED_OVER_FILE
    try:
        fd = os.open(record, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as f:
            trees = [Path(p) for p in json.loads(f.read(_RECORD_MAX_BYTES))]
    except FileNotFoundError:
        return
    except (OSError, ValueError, TypeError) as exc:
        log.warning("cannot read %s: %s", record, exc)
        return
    try:
        hand_over(trees, [], AgentUser(os.geteuid(), os.getegid()))
        record.unlink()
    except OSError as exc:
        log.warning("cannot take back the paths of %s: %s", run_dir.name, exc)
