"""Directories made ahead of the agents that need them: a new agent's run directory and fresh workspace
are each moved into place by one rename, instead of made directory by directory while its caller waits.
On this machine's file system each directory made costs 0.02 to 0.6 ms, and an agent's start made about
ten of them.

A filler thread, started with the service, keeps a few blanks ready in a hidden folder next to where
they are used (a rename does not cross file systems); a start that finds none makes its directories
itself, as before. Blanks live inside the runs and workspaces directories, which the sandbox masks: no
agent sees them. Each service process has its own folder there, locked while its filler runs (until the
service stops; instances on one host may share a data directory); a folder whose lock is free is an
earlier life's, not trusted to be blank, and removed."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER = ".blanks"
READY = 4  # blanks kept ready of each kind: a start in a row, or a short burst, finds one
FILLER_NICE = 10  # the filler yields the CPU to the service's own work
# after a blank is taken, the filler waits this long before it makes more: the start that took it (a few
# ms) then has the CPU and the interpreter to itself
REFILL_AFTER_SECONDS = 0.05
_FOLDER_TRIES = 5


class Blanks:
    """Ready-made copies of one directory layout (what `make` builds in an empty directory)."""

    def __init__(self, parent: Path, make: Callable[[Path], None], ready: int = READY) -> None:
        self._folders = parent / FOLDER
        self._folder = self._folders / uuid.uuid4().hex
        self._make = make
        self._ready: deque[Path] = deque()
        self._wanted = ready
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def take(self, dest: Path) -> bool:
        """Moves a blank to `dest` (which must not exist, or be an empty directory); False, with nothing
        done, when none is ready or it cannot be moved there: the caller makes the layout itself."""
        with self._lock:
            blank = self._ready.popleft() if self._ready else None
            self._start_filler()
        self._wake.set()
        if blank is None:
            return False
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(blank, dest)
        except OSError as exc:  # another file system, `dest` not empty, a blank removed by hand
            log.debug("a blank could not be moved to %s: %s", dest, exc)
            with contextlib.suppress(OSError):
                shutil.rmtree(blank)
            return False
        return True

    def start(self) -> None:
        """Makes the first blanks now (a service starting), not when the first start finds none."""
        with self._lock:
            self._start_filler()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def _start_filler(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._fill_forever, name="blanks", daemon=True)
            self._thread.start()

    def _fill_forever(self) -> None:
        with contextlib.suppress(OSError):  # only this thread's priority (a Linux thread id)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FILLER_NICE)
        try:
            lock = self._own_folder()
        except OSError as exc:
            log.warning("no blank directories in %s: %s", self._folders, exc)
            return
        try:
            _remove_unlocked(self._folders, keep=self._folder)
            while not self._closed:
                try:
                    self._fill()
                except OSError as exc:  # a full disk, a folder removed: starts make their own meanwhile
                    log.warning("blank directories for %s could not be made: %s", self._folder.parent, exc)
                self._wake.wait()
                self._wake.clear()
                time.sleep(REFILL_AFTER_SECONDS)
        finally:
            os.close(lock)  # the folder is an earlier life's now: the next start removes it

    def _own_folder(self) -> int:
        """This process's folder, made and locked; the lock's descriptor, to keep open while it is to
        last. Another service starting at the same moment may find the folder made but not yet locked,
        take it for an earlier life's and remove it: then another is made."""
        for _ in range(_FOLDER_TRIES):
            with contextlib.suppress(FileNotFoundError):
                self._folder.mkdir(parents=True)
                fd = _locked(self._folder, wait=True)
                if fd is not None and os.fstat(fd).st_nlink > 0:  # not removed before it was locked
                    return fd
                if fd is not None:
                    os.close(fd)
            self._folder = self._folders / uuid.uuid4().hex
        raise OSError(f"a folder of its own was removed {_FOLDER_TRIES} times as it was made")

    def _fill(self) -> None:
        while len(self._ready) < self._wanted and not self._closed:
            name = uuid.uuid4().hex
            building = self._folder / f"{name}.part"
            building.mkdir()
            try:
                self._make(building)
            except OSError:
                shutil.rmtree(building, ignore_errors=True)
                raise
            blank = building.rename(self._folder / name)
            with self._lock:
                self._ready.append(blank)


def _locked(folder: Path, *, wait: bool) -> int | None:
    """A descriptor of `folder` holding its exclusive lock (kept open while the lock is to last); None
    when another process holds it."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        os.close(fd)
        raise
    return fd


def _remove_unlocked(folders: Path, keep: Path) -> None:
    """The folders of processes that are gone (their lock is free), removed."""
    for folder in folders.iterdir():
        if folder == keep or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            fd = _locked(folder, wait=False)
        except OSError:
            continue
        if fd is None:
            continue  # a live process's
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)
