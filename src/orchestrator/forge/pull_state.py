"""What GitHub says about a pull request beyond the PR itself: the head commit's check runs and combined
status, the reviews and review comments, and the service's own login. Read through GitHubClient's
transport (its token, rate-limit handling and redaction); every answer is read defensively."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from orchestrator.domain.pr_loop import CheckRun, CommitStatus, Review, ReviewComment
from orchestrator.forge import parse
from orchestrator.forge.errors import ForgeFailed
from orchestrator.forge.github import GitHubClient

PER_PAGE = 100
# Pages read of one list at each look (GitHub's `Link: rel="next"` followed): a PR cannot make the watcher
# read forever. Past the cap, check runs and statuses count as still pending (a partial read never
# passes), and of reviews and review comments the first and the newest pages are read (the watcher then
# holds the merge: an unread review may be a person's change request).
MAX_PAGES = 10
_TEXT_CAP = 4_000
_UNREAD = "(more than the service reads: not all read)"


def _text(value: Any) -> str:
    return value[:_TEXT_CAP] if isinstance(value, str) else ""


def _login(value: Any) -> str:
    return str(value.get("login") or "") if isinstance(value, dict) else ""


def _list(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise parse.BadAnswer(f"GitHub's answer for {what} is not a list")
    return [v for v in value if isinstance(v, dict)]


def _page_number(url: str) -> int:
    """The `page` a listing's link names (0 when it names none)."""
    values = parse_qs(urlsplit(url).query).get("page") or ["0"]
    return int(values[0]) if values[0].isdigit() else 0


def _unique(pages: list[Any], what: str) -> list[dict[str, Any]]:
    """The items with an id, each once (a list that grows between two page reads shifts its pages)."""
    seen: dict[int, dict[str, Any]] = {}
    for page in pages:
        for item in _list(page, what):
            if isinstance(item.get("id"), int):
                seen.setdefault(item["id"], item)
    return list(seen.values())


class PullState:
    def __init__(self, client: GitHubClient) -> None:
        self._client = client
        self._login: str | None = None

    def _path(self, repo: str) -> str:
        ref = self._client.ref(repo)
        return f"repos/{quote(ref.owner, safe='')}/{quote(ref.name, safe='')}"

    def _pages(self, path: str, what: str, *, newest: bool = False) -> tuple[list[Any], bool]:
        """Each page's answer, in GitHub's order, and whether that was all of them (at most MAX_PAGES read
        forward). With `newest`, a list longer than that is read as its first page and then its newest
        pages, back from `rel="last"` (GitHub lists reviews and comments oldest first); when the first
        page's `rel="last"` says so, the middle pages are skipped at once (MAX_PAGES reads, not 19)."""
        first = self._client._send("GET", path, what=what, params={"per_page": PER_PAGE})
        pages = [parse.json_of(first)]
        next_url = self._client.next_page(first)
        last = self._client.page_link(first, "last") if newest else None
        if last is not None and _page_number(last) > MAX_PAGES:
            next_url = None  # past the cap: straight to the newest
        while next_url is not None and len(pages) < MAX_PAGES:
            response = self._client._send("GET", next_url, what=what)
            pages.append(parse.json_of(response))
            next_url = self._client.next_page(response)
        last_url = last if newest and (next_url is not None or _page_number(last or "") > MAX_PAGES) else None
        if last_url is None:
            return pages, next_url is None
        newer: list[Any] = []
        url: str | None = last_url
        while url is not None and len(newer) < MAX_PAGES - 1:
            response = self._client._send("GET", url, what=what)
            newer.insert(0, parse.json_of(response))
            prev_url = self._client.page_link(response, "prev")
            url = None if prev_url == self._client.page_link(response, "first") else prev_url
        return [pages[0], *newer], False

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
        pages, complete = self._pages(f"{self._path(repo)}/commits/{quote(sha, safe='')}/check-runs", what)
        runs = [
            r
            for data in pages
            for r in _list(data.get("check_runs") if isinstance(data, dict) else None, what)
        ]
        out = []
        for run in runs:
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
        if not complete:
            out.append(CheckRun(name=_UNREAD, status="queued", conclusion=None, summary=""))
        return out

    def statuses(self, repo: str, sha: str) -> list[CommitStatus]:
        what = f"the combined status of {sha[:12]} in {repo}"
        pages, complete = self._pages(f"{self._path(repo)}/commits/{quote(sha, safe='')}/status", what)
        statuses = [
            CommitStatus(
                context=_text(s.get("context")) or "(unnamed)",
                state=_text(s.get("state")) or "pending",
                description=_text(s.get("description")),
            )
            for data in pages
            for s in _list(data.get("statuses") if isinstance(data, dict) else None, what)
        ]
        if not complete:
            statuses.append(CommitStatus(context=_UNREAD, state="pending", description=""))
        return statuses

    def reviews(self, repo: str, number: int) -> list[Review]:
        return self.reviews_read(repo, number)[0]

    def reviews_read(self, repo: str, number: int) -> tuple[list[Review], bool]:
        """The reviews read, and whether that was all of them (past MAX_PAGES: the first and newest pages)."""
        what = f"reviews of #{number} in {repo}"
        pages, complete = self._pages(f"{self._path(repo)}/pulls/{number}/reviews", what, newest=True)
        reviews = [
            Review(
                id=int(r["id"]),
                user=_login(r.get("user")),
                state=_text(r.get("state")),
                body=_text(r.get("body")),
                association=_text(r.get("author_association")) or "NONE",
            )
            for r in _unique(pages, what)
        ]
        return reviews, complete

    def review_comments(self, repo: str, number: int) -> list[ReviewComment]:
        what = f"review comments of #{number} in {repo}"
        out = []
        pages, _ = self._pages(f"{self._path(repo)}/pulls/{number}/comments", what, newest=True)
        for c in _unique(pages, what):
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
