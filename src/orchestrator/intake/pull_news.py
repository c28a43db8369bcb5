"""Whoever watches pull requests (CI, reviews, merges) is told when GitHub sends news about one."""

from __future__ import annotations

from typing import Protocol


class PullNews(Protocol):
    def poke(self, repo: str, pr_number: int | None, head_sha: str | None) -> None: ...
