"""The change feed's rules, without I/O: what differs between two looks at the store, and the stream's
message ids (`<epoch>.<n>`: n counts the changes one feed has seen since its epoch began)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# what a row looks like at one look: its status first, then whatever else the page shows of it
Looks = Mapping[str, tuple[str, ...]]

REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # agent | task | queue | event | settings
    id: str
    status: str
    task_id: str | None = None


def differences(
    kind: str,
    before: Looks,
    after: Looks,
    *,
    asked: frozenset[str] = frozenset(),
    task_of: Mapping[tuple[str, str], str | None] | None = None,
) -> list[Change]:
    """The rows of `after` that are new or look different from `before`, then the `asked` rows (ids
    looked up by name) that are gone from the store."""
    tasks = task_of or {}
    out = [
        Change(kind, key, looks[0], tasks.get((kind, key)))
        for key, looks in after.items()
        if before.get(key) != looks
    ]
    out.extend(Change(kind, key, REMOVED) for key in sorted(asked) if key not in after)
    return out


@dataclass(frozen=True, slots=True)
class Cursor:
    epoch: str
    n: int

    def __str__(self) -> str:
        return f"{self.epoch}.{self.n}"


def parse_cursor(value: str | None) -> Cursor | None:
    """A `Last-Event-ID` as a cursor; None when it is not one (the reader then starts afresh)."""
    if not value:
        return None
    epoch, dot, n = value.strip().rpartition(".")
    if not dot or not epoch or len(epoch) > 64 or not n.isdigit() or len(n) > 18:
        return None
    return Cursor(epoch, int(n))
