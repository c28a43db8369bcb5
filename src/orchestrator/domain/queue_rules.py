"""The queue's settings and its one scheduling rule: what may start now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

MAX_CONCURRENT_LIMIT = 100


@dataclass(frozen=True)
class QueueSettings:
    paused: bool = False
    stop_on_failure: bool = True
    max_concurrent: int = 1
    pause_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "paused": self.paused,
            "stop_on_failure": self.stop_on_failure,
            "max_concurrent": self.max_concurrent,
        }


class SettingError(ValueError):
    """A setting that does not exist or a value it cannot take; the message names it."""


def _bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SettingError(f"{key}: must be true or false, got {value!r}")


def _int(key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise SettingError(f"{key}: must be a whole number, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    else:
        raise SettingError(f"{key}: must be a whole number, got {value!r}")
    if not low <= number <= high:
        raise SettingError(f"{key}: must be between {low} and {high}, got {number}")
    return number


USER_KEYS = ("paused", "stop_on_failure", "max_concurrent")


def parse_setting(key: str, value: object) -> tuple[str, str]:
    """Validates one user-set setting; returns the key and the value as stored text."""
    if key in ("paused", "stop_on_failure"):
        return key, "true" if _bool(key, value) else "false"
    if key == "max_concurrent":
        return key, str(_int(key, value, 1, MAX_CONCURRENT_LIMIT))
    raise SettingError(f"key: unknown setting {key!r}; known: {', '.join(USER_KEYS)}")


def settings_from_rows(rows: Mapping[str, str]) -> QueueSettings:
    defaults = QueueSettings()
    return QueueSettings(
        paused=rows.get("paused", "false") == "true",
        stop_on_failure=rows.get("stop_on_failure", "true") == "true",
        max_concurrent=int(rows.get("max_concurrent", defaults.max_concurrent)),
        pause_reason=rows.get("pause_reason") or None,
    )


class Candidate(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def position(self) -> int: ...


C = TypeVar("C", bound=Candidate)


def choose_next(settings: QueueSettings, processing: int, queued: Sequence[C]) -> C | None:
    """The item to start now, if any: none while paused or full, else the first in queue order."""
    if settings.paused or processing >= settings.max_concurrent or not queued:
        return None
    return min(queued, key=lambda c: (c.position, c.id))
