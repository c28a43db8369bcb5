"""The fake GitHub's PR-loop routes, from GitHub's documented shapes: a commit's check runs and combined
status, a PR's reviews and review comments. Tests set them through `FakeGitHub.checks` (direct state).
Each list is served in pages as GitHub does (`per_page`, at most `FakeGitHub.max_per_page`; `page`), with
`Link` headers (`next`, `last`, `first`, `prev`).

The fake learns a PR's new head the way the service shows it: a commit whose checks are asked for becomes
the head of the repository's open PR (its pushes go to the separate git server). A conflict set with
`conflict_until_new_head` clears once a new head appears, as after a fix-up merged the base in."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from tests.support.fake_github import FakeGitHub, FakePull

_COMMIT = re.compile(r"/commits/(?P<sha>[^/]+)/(?P<what>check-runs|status)")
_PULL_PART = re.compile(r"/pulls/(?P<number>\d+)/(?P<what>reviews|comments)")


def run(name: str, conclusion: str | None, summary: str = "", *, status: str = "completed") -> dict[str, Any]:
    """A check run as a test describes it (conclusion None: still running)."""
    return {
        "name": name,
        "status": status if conclusion is not None else "in_progress",
        "conclusion": conclusion,
        "summary": summary,
    }


@dataclass
class Verdict:
    """What CI reports for one commit: check runs and commit statuses."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Repo:
    plan: list[Verdict] = field(default_factory=list)  # for each new commit asked about, in order
    by_sha: dict[str, Verdict] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    conflict_heads: dict[int, int] = field(default_factory=dict)  # new heads still to see with a conflict


class FakeChecks:
    def __init__(self, fake: FakeGitHub) -> None:
        self._fake = fake
        self._repos: dict[str, _Repo] = {}
        self._ids = itertools.count(1001)
        self.asked: list[tuple[str, str]] = []  # (sha, what) in the order the service asked

    def _repo(self, full_name: str) -> _Repo:
        return self._repos.setdefault(full_name.lower(), _Repo())

    def plan(self, repo: str, verdicts: list[Verdict]) -> None:
        """Each new commit the service asks about gets the next verdict; the last one repeats."""
        with self._fake._lock:
            self._repo(repo).plan = list(verdicts)

    def set_verdict(self, repo: str, sha: str, verdict: Verdict) -> None:
        with self._fake._lock:
            self._repo(repo).by_sha[sha] = verdict

    def add_review(
        self, repo: str, number: int, user: str, state: str, body: str = "", association: str = "COLLABORATOR"
    ) -> int:
        with self._fake._lock:
            review_id = next(self._ids)
            self._repo(repo).reviews.setdefault(number, []).append(
                {
                    "id": review_id,
                    "user": {"login": user, "type": "User"},
                    "state": state,
                    "body": body,
                    "author_association": association,
                }
            )
            return review_id

    def add_comment(
        self, repo: str, number: int, user: str, body: str, path: str = "calc.py", association: str = "MEMBER"
    ) -> int:
        with self._fake._lock:
            comment_id = next(self._ids)
            self._repo(repo).comments.setdefault(number, []).append(
                {
                    "id": comment_id,
                    "user": {"login": user, "type": "User"},
                    "body": body,
                    "path": path,
                    "pull_request_review_id": None,
                    "author_association": association,
                }
            )
            return comment_id

    def conflict_until_new_head(self, repo: str, number: int) -> None:
        """The PR (once it exists) conflicts at the next head the service asks about, and merges cleanly
        from the head after that."""
        with self._fake._lock:
            self._repo(repo).conflict_heads[number] = 1

    def route(
        self,
        repo_name: str,
        method: str,
        rest: str,
        pulls: dict[int, FakePull],
        query: dict[str, list[str]] | None = None,
    ) -> tuple[int, Any, dict[str, str]] | None:
        """The answer for a path of these routes (called under the fake's lock), else None."""
        if method != "GET":
            return None
        query = query or {}
        per_page = max(1, min(int(query.get("per_page", ["30"])[0]), self._fake.max_per_page))
        page = max(int(query.get("page", ["1"])[0]), 1)

        def paged(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
            last = max(1, -(-len(items) // per_page))
            chunk = items[(page - 1) * per_page : page * per_page]
            return chunk, self._links(repo_name, rest, per_page, page, last)

        repo = self._repo(repo_name)
        commit = _COMMIT.fullmatch(rest)
        if commit is not None:
            sha = commit["sha"]
            self.asked.append((sha, commit["what"]))
            self._new_head(repo, sha, pulls)
            verdict = self._verdict(repo, sha)
            if commit["what"] == "check-runs":
                runs = [
                    {
                        "id": i + 1,
                        "name": r["name"],
                        "head_sha": sha,
                        "status": r["status"],
                        "conclusion": r["conclusion"],
                        "output": {"title": r["name"], "summary": r["summary"], "text": None},
                    }
                    for i, r in enumerate(verdict.runs)
                ]
                chunk, links = paged(runs)
                return 200, {"total_count": len(runs), "check_runs": chunk}, links
            states = [s["state"] for s in verdict.statuses]
            combined = (
                "failure"
                if any(s in ("failure", "error") for s in states)
                else "pending"
                if not states or "pending" in states
                else "success"
            )
            chunk, links = paged(verdict.statuses)
            body = {"state": combined, "sha": sha, "total_count": len(states), "statuses": chunk}
            return 200, body, links
        part = _PULL_PART.fullmatch(rest)
        if part is not None:
            number = int(part["number"])
            if number not in pulls:
                return 404, {"message": "Not Found"}, {}
            items = repo.reviews if part["what"] == "reviews" else repo.comments
            chunk, links = paged(list(items.get(number, [])))
            return 200, chunk, links
        return None

    def _links(self, repo_name: str, rest: str, per_page: int, page: int, last: int) -> dict[str, str]:
        def link(number: int, rel: str) -> str:
            params = urlencode({"per_page": per_page, "page": number})
            url = f"{self._fake.api_url}/repos/{repo_name}{rest}?{params}"
            return f'<{url}>; rel="{rel}"'

        rels = []
        if page < last:
            rels += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            rels += [link(1, "first"), link(page - 1, "prev")]
        return {"Link": ", ".join(rels)} if rels else {}

    def _verdict(self, repo: _Repo, sha: str) -> Verdict:
        if sha not in repo.by_sha:
            if not repo.plan:
                return Verdict()
            repo.by_sha[sha] = repo.plan.pop(0) if len(repo.plan) > 1 else repo.plan[0]
        return repo.by_sha[sha]

    def _new_head(self, repo: _Repo, sha: str, pulls: dict[int, FakePull]) -> None:
        for pull in pulls.values():
            if pull.state != "open" or pull.head_sha == sha:
                continue
            pull.head_sha = sha
            left = repo.conflict_heads.get(pull.number)
            if left is None:
                continue
            if left > 0:
                pull.mergeable, pull.mergeable_state = False, "dirty"
                repo.conflict_heads[pull.number] = left - 1
            else:
                pull.mergeable, pull.mergeable_state = True, "clean"
                del repo.conflict_heads[pull.number]
