"""Whoever watches pull requests (CI, reviews, merges) is told when GitHub sends news about one."""

from __future__ import annotations

from typing import Protocol


class PullNews(Protocol):
    def poke(self, repo: str, pr_number: int | None, head_sha: str | None) -> None: ...


class NoPullNews:
    """Until a watcher is wired in: the news is dropped (polling by the watcher stays the fallback)."""

    def __init__(self) -> None:
        self.poked = 0

    def poke(self, repo: str, pr_number: int | None, head_sha: str | None) -> None:
        self.poked += 1
