"""What the service takes from the git repository in an agent's checkout, without running git in it.

An agent controls everything under `.git`: config (includes, fsmonitor, hooks path), hooks, `commondir`,
a `.git` file pointing elsewhere, symlinked refs, `objects/info/alternates`. So the service reads the
branch tip itself (no link followed, no symbolic ref), and links (or copies) only the object files,
regular ones, into a repository of its own; git then runs only there."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from orchestrator.forge.errors import ForgeInputError
from orchestrator.untrusted_files import UntrustedFileError, open_dir, open_regular, read_fd

_SHA = re.compile(rb"[0-9a-f]{40}([0-9a-f]{24})?")
_LOOSE_DIR = re.compile(r"[0-9a-f]{2}")
_LOOSE_NAME = re.compile(r"[0-9a-f]{38}([0-9a-f]{24})?")
_PACK_NAME = re.compile(r"pack-[0-9a-f]{40,64}\.(pack|idx)")
MAX_PACKED_REFS = 64 << 20
MAX_COPY_BYTES = 4 << 30
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def branch_tip(checkout: Path, branch: str) -> str | None:
    """The commit `refs/heads/<branch>` names in the checkout's `.git` (a directory), or None."""
    ref = f"refs/heads/{branch}"
    try:
        fd = open_regular(checkout, f".git/{ref}")
    except UntrustedFileError:
        fd = None
    if fd is not None:
        try:
            content = read_fd(fd, 200).strip()
        finally:
            os.close(fd)
        if not _SHA.fullmatch(content):
            raise ForgeInputError("branch", f"{ref} in {checkout} is not a plain commit id")
        return content.decode()
    try:
        packed = open_regular(checkout, ".git/packed-refs")
    except UntrustedFileError:
        return None
    try:
        data = read_fd(packed, MAX_PACKED_REFS)
    finally:
        os.close(packed)
    for line in data.splitlines():
        sha, _, name = line.partition(b" ")
        if name == ref.encode() and _SHA.fullmatch(sha):
            return sha.decode()
    return None


def _place(src_dir: int, name: str, target: Path) -> None:
    """`target` becomes a hard link to (or a copy of) the regular file `name`; never a link to a link."""
    try:
        os.link(name, target, src_dir_fd=src_dir, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EACCES, errno.EMLINK):
            raise
        _copy(src_dir, name, target)
        return
    if not stat.S_ISREG(os.lstat(target).st_mode):
        target.unlink()


def _copy(src_dir: int, name: str, target: Path) -> None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_dir)
    except OSError:
        return
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_COPY_BYTES:
            return
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            offset = 0
            while offset < info.st_size:
                sent = os.sendfile(out, fd, offset, min(info.st_size - offset, 1 << 24))
                if sent == 0:
                    break
                offset += sent
        finally:
            os.close(out)
    finally:
        os.close(fd)


def link_objects(checkout: Path, objects: Path) -> int:
    """Loose objects and packs of the checkout's `.git/objects` into `objects` (an empty object
    directory of the service); `info/` (alternates) and anything not named like an object is left out."""
    count = 0
    try:
        with open_dir(checkout, ".git/objects") as top:
            for entry in os.listdir(top):
                if _LOOSE_DIR.fullmatch(entry):
                    pattern = _LOOSE_NAME
                elif entry == "pack":
                    pattern = _PACK_NAME
                else:
                    continue
                sub = os.open(entry, _DIR_FLAGS, dir_fd=top)
                try:
                    (objects / entry).mkdir(exist_ok=True)
                    for name in os.listdir(sub):
                        if pattern.fullmatch(name):
                            _place(sub, name, objects / entry / name)
                            count += 1
                finally:
                    os.close(sub)
    except OSError as exc:
        raise ForgeInputError("path", f"{checkout} has no readable .git directory ({exc.strerror})") from None
    return count
