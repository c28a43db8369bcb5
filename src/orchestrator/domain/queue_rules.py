"""The queue's settings and its one scheduling rule: what may start now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from orchestrator.errors import Invalid

MAX_CONCURRENT_LIMIT = 100


@dataclass(frozen=True)
class QueueSettings:
    paused: bool = False
    stop_on_failure: bool = True
    max_concurrent: int = 1
    max_concurrent_per_repo: int | None = None
    pause_reason: str | None = None
    parked_until: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "paused": self.paused,
            "stop_on_failure": self.stop_on_failure,
            "max_concurrent": self.max_concurrent,
            "max_concurrent_per_repo": self.max_concurrent_per_repo,
        }


class SettingError(Invalid, ValueError):
    """A setting that does not exist or a value it cannot take; the message names it."""


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SettingError(f"{key}: must be true or false, got {_shown(value)}")


def _int(key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise SettingError(f"{key}: must be a whole number, got {_shown(value)}")
    if isinstance(value, int):
        number = value
    elif (
        isinstance(value, str) and len(value) < 30 and value.isascii() and value.strip().lstrip("-").isdigit()
    ):
        number = int(value.strip())
    else:
        raise SettingError(f"{key}: must be a whole number, got {_shown(value)}")
    if not low <= number <= high:
        raise SettingError(f"{key}: must be between {low} and {high}, got {number}")
    return number


USER_KEYS = ("paused", "stop_on_failure", "max_concurrent", "max_concurrent_per_repo")


def parse_setting(key: str, value: object) -> tuple[str, str]:
    """Validates one user-set setting; returns the key and the value as stored text."""
    if key in ("paused", "stop_on_failure"):
        return key, "true" if _bool(key, value) else "false"
    if key == "max_concurrent":
        return key, str(_int(key, value, 1, MAX_CONCURRENT_LIMIT))
    if key == "max_concurrent_per_repo":
        if value is None or value == "" or value == 0 or value == "0":
            return key, "0"
        return key, str(_int(key, value, 1, MAX_CONCURRENT_LIMIT))
    raise SettingError(f"key: unknown setting {key!r}; known: {', '.join(USER_KEYS)}")


def settings_from_rows(rows: Mapping[str, str]) -> QueueSettings:
    defaults = QueueSettings()
    return QueueSettings(
        paused=rows.get("paused", "false") == "true",
        stop_on_failure=rows.get("stop_on_failure", "true") == "true",
        max_concurrent=int(rows.get("max_concurrent", defaults.max_concurrent)),
        max_concurrent_per_repo=int(rows.get("max_concurrent_per_repo", "0")) or None,
        pause_reason=rows.get("pause_reason") or None,
        parked_until=rows.get("parked_until") or None,
    )


class Candidate(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def position(self) -> int: ...

    @property
    def priority(self) -> int: ...

    @property
    def ready(self) -> bool:
        """Its dependencies completed, it is not parked, and its repository has room."""


C = TypeVar("C", bound=Candidate)


def choose_next(settings: QueueSettings, processing: int, queued: Sequence[C]) -> C | None:
    """The item to start now, if any: none while paused or full, else the ready item of highest
    priority, the oldest first among equals."""
    if settings.paused or processing >= settings.max_concurrent:
        return None
    ready = [c for c in queued if c.ready]
    if not ready:
        return None
    return min(ready, key=lambda c: (-c.priority, c.position, c.id))


def takes_the_last_slot(settings: QueueSettings, processing: int) -> bool:
    """Whether one more start, with `processing` items running, leaves no room for another."""
    return processing + 1 >= settings.max_concurrent


def dependency_state(statuses: Mapping[str, str | None]) -> tuple[bool, str | None]:
    """(ready, why blocked) from the statuses of a task's dependencies (None: the task is gone)."""
    failed = sorted(dep for dep, status in statuses.items() if status in ("failed", None))
    if failed:
        return False, f"dependency {', '.join(failed)} failed or is gone"
    waiting = [dep for dep, status in statuses.items() if status != "completed"]
    return not waiting, None


def find_cycle(graph: Mapping[str, Sequence[str]], start: str) -> list[str] | None:
    """A path that leads from `start` back to itself through depends_on edges, if there is one."""
    path: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in seen:
            return None
        seen.add(node)
        path.append(node)
        for nxt in graph.get(node, ()):
            found = visit(nxt)
            if found:
                return found
        path.pop()
        return None

    return visit(start)


def repositories_of(repo: str | None, repos: list[str] | None) -> frozenset[str]:
    """Every repository a task works in: its primary one and its others."""
    return frozenset([*(repos or []), *([repo] if repo else [])])


def busy_repositories(working: list[frozenset[str]]) -> dict[str, int]:
    """How many running tasks work in each repository."""
    busy: dict[str, int] = {}
    for repositories in working:
        for name in repositories:
            busy[name] = busy.get(name, 0) + 1
    return busy


def has_room(repositories: frozenset[str], busy: dict[str, int], per_repo_limit: int | None) -> bool:
    """A task may start only while each of its repositories is below the per-repository limit."""
    return not per_repo_limit or all(busy.get(name, 0) < per_repo_limit for name in repositories)
