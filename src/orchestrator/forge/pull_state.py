"""What GitHub says about a pull request beyond the PR itself: the head commit's check runs and combined
status, the reviews and review comments, and the service's own login. Read through GitHubClient's
transport (its token, rate-limit handling and redaction); every answer is read defensively."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from orchestrator.domain.pr_loop import CheckRun, CommitStatus, Review, ReviewComment
from orchestrator.forge import parse
from orchestrator.forge.errors import ForgeFailed
from orchestrator.forge.github import GitHubClient

PER_PAGE = 100  # one page: a PR with more than 100 check runs or reviews is read in part
_TEXT_CAP = 4_000


def _text(value: Any) -> str:
    return value[:_TEXT_CAP] if isinstance(value, str) else ""


def _login(value: Any) -> str:
    return str(value.get("login") or "") if isinstance(value, dict) else ""


def _list(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise parse.BadAnswer(f"GitHub's answer for {what} is not a list")
    return [v for v in value if isinstance(v, dict)]


class PullState:
    def __init__(self, client: GitHubClient) -> None:
        self._client = client
        self._login: str | None = None

    def _path(self, repo: str) -> str:
        ref = self._client.ref(repo)
        return f"repos/{quote(ref.owner, safe='')}/{quote(ref.name, safe='')}"

    def _get(self, path: str, what: str) -> Any:
        response = self._client._send("GET", path, what=what, params={"per_page": PER_PAGE})
        return parse.json_of(response)

    def own_login(self) -> str:
        """The login of the token's user (cached): its own reviews and comments are not a person's."""
        if self._login is None:
            data = parse.json_of(self._client._send("GET", "user", what="the token's user"))
            login = data.get("login") if isinstance(data, dict) else None
            if not isinstance(login, str) or not login:
                raise ForgeFailed("GitHub's answer for the token's user has no login")
            self._login = login
        return self._login

    def check_runs(self, repo: str, sha: str) -> list[CheckRun]:
        what = f"check runs of {sha[:12]} in {repo}"
        data = self._get(f"{self._path(repo)}/commits/{quote(sha, safe='')}/check-runs", what)
        runs = data.get("check_runs") if isinstance(data, dict) else None
        out = []
        for run in _list(runs, what):
            output = run.get("output") if isinstance(run.get("output"), dict) else {}
            assert isinstance(output, dict)
            summary = " ".join(t for t in (_text(output.get("title")), _text(output.get("summary"))) if t)
            conclusion = run.get("conclusion")
            out.append(
                CheckRun(
                    name=_text(run.get("name")) or "(unnamed)",
                    status=_text(run.get("status")) or "queued",
                    conclusion=conclusion if isinstance(conclusion, str) else None,
                    summary=summary,
                )
            )
        return out

    def statuses(self, repo: str, sha: str) -> list[CommitStatus]:
        what = f"the combined status of {sha[:12]} in {repo}"
        data = self._get(f"{self._path(repo)}/commits/{quote(sha, safe='')}/status", what)
        statuses = data.get("statuses") if isinstance(data, dict) else None
        return [
            CommitStatus(
                context=_text(s.get("context")) or "(unnamed)",
                state=_text(s.get("state")) or "pending",
                description=_text(s.get("description")),
            )
            for s in _list(statuses, what)
        ]

    def reviews(self, repo: str, number: int) -> list[Review]:
        what = f"reviews of #{number} in {repo}"
        return [
            Review(
                id=int(r["id"]),
                user=_login(r.get("user")),
                state=_text(r.get("state")),
                body=_text(r.get("body")),
                association=_text(r.get("author_association")) or "NONE",
            )
            for r in _list(self._get(f"{self._path(repo)}/pulls/{number}/reviews", what), what)
            if isinstance(r.get("id"), int)
        ]

    def review_comments(self, repo: str, number: int) -> list[ReviewComment]:
        what = f"review comments of #{number} in {repo}"
        out = []
        for c in _list(self._get(f"{self._path(repo)}/pulls/{number}/comments", what), what):
            if not isinstance(c.get("id"), int):
                continue
            review_id = c.get("pull_request_review_id")
            out.append(
                ReviewComment(
                    id=int(c["id"]),
                    user=_login(c.get("user")),
                    body=_text(c.get("body")),
                    path=_text(c.get("path")),
                    review_id=review_id if isinstance(review_id, int) else None,
                    association=_text(c.get("author_association")) or "NONE",
                )
            )
        return out
