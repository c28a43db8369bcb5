"""A branch's diff cut into pages: the file list git's `--numstat -z` gives, grouped so that a page holds
at most so many changed lines and files (a file larger than that alone on its page), and a page's patch
text split back into one piece per file."""

from __future__ import annotations

from dataclasses import dataclass

PAGE_LINES = 2_000
PAGE_FILES = 40


@dataclass(frozen=True)
class FileStat:
    path: str  # the bytes git gave, as the file system's text (surrogate escapes): git is given it back
    additions: int | None  # None: a binary file
    deletions: int | None

    @property
    def binary(self) -> bool:
        return self.additions is None

    @property
    def weight(self) -> int:
        return 1 if self.additions is None else max(self.additions + (self.deletions or 0), 1)


def _count(field: str) -> int | None:
    return int(field) if field.isdigit() else None


def parse_numstat(out: bytes, *, complete: bool = True) -> list[FileStat]:
    """`git diff --numstat -z --no-renames` output: `added TAB deleted TAB path NUL` per file (`-` for
    both counts of a binary file). Of output cut short (`complete` False), the last record is dropped."""
    records = out.split(b"\0")
    if not complete or records[-1]:
        records = records[:-1]
    stats = []
    for record in records:
        added, sep1, rest = record.partition(b"\t")
        deleted, sep2, path = rest.partition(b"\t")
        if not (sep1 and sep2 and path):
            continue
        a, d = _count(added.decode("ascii", "replace")), _count(deleted.decode("ascii", "replace"))
        binary = a is None or d is None
        stats.append(
            FileStat(path.decode(errors="surrogateescape"), None if binary else a, None if binary else d)
        )
    return stats


def paginate(stats: list[FileStat], *, lines: int = PAGE_LINES, files: int = PAGE_FILES) -> list[list[int]]:
    """The indexes of `stats` on each page, in order; at least one page (empty for no files)."""
    pages: list[list[int]] = [[]]
    weight = 0
    for i, stat in enumerate(stats):
        current = pages[-1]
        if current and (weight + stat.weight > lines or len(current) >= files):
            pages.append([])
            weight = 0
        pages[-1].append(i)
        weight += stat.weight
    return pages


def split_patch(text: str) -> list[str]:
    """A multi-file patch → one piece per file, in order (each starting with its `diff --git` line)."""
    pieces: list[list[str]] = []
    for line in text.split("\n"):  # only "\n": a "\r" inside a changed line is part of that line
        if line.startswith("diff --git ") or not pieces:
            pieces.append([line])
        else:
            pieces[-1].append(line)
    joined = ["\n".join(p) for p in pieces]
    return [p for p in joined if p.startswith("diff --git ")]
