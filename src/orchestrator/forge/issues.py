"""GitHub issues for intake: the open issues carrying a label (a conditional GET: an unchanged list costs
no rate limit), and comments posted on an issue."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from orchestrator.domain.github_news import BadPayload, IssueNews, issue_of
from orchestrator.forge import parse
from orchestrator.forge.errors import ForgeFailed
from orchestrator.forge.github import GitHubClient, repo_path
from orchestrator.forge.names import repo_ref

MAX_PAGES = 10
COMMENT_CAP = 60_000


@dataclass(frozen=True)
class Listing:
    issues: list[IssueNews]
    changed: bool  # False: GitHub answered 304, the same list as last time
    complete: bool  # every page read: an issue missing from it is closed or unlabelled


class Issues:
    def __init__(self, github: GitHubClient) -> None:
        self._github = github
        self._lock = threading.Lock()
        self._etags: dict[str, tuple[str, Listing]] = {}

    def labelled(self, repo: str, label: str) -> Listing:
        ref = repo_ref(repo, self._github.owner)
        path = f"{repo_path(ref)}/issues"
        params: dict[str, str | int] = {"state": "open", "labels": label, "per_page": 100}
        key = f"{ref.full_name}\n{label}"
        with self._lock:
            cached = self._etags.get(key)
        what = f"issues labelled {label!r} of {ref}"
        response = self._github.conditional_get(
            path, what=what, etag=cached[0] if cached else None, params=params
        )
        if response is None and cached is not None:
            return Listing(cached[1].issues, changed=False, complete=cached[1].complete)
        if response is None:
            raise ForgeFailed(f"GitHub answered 304 for {what} without being asked conditionally")
        etag = response.headers.get("etag")
        issues = _issues(parse.json_of(response), ref.full_name)
        complete = True
        next_url = self._github.next_page(response)
        for _ in range(MAX_PAGES - 1):
            if next_url is None:
                break
            page = self._github.conditional_get(next_url, what=what, etag=None)
            assert page is not None
            issues.extend(_issues(parse.json_of(page), ref.full_name))
            next_url = self._github.next_page(page)
        else:
            complete = next_url is None
        listing = Listing(issues, changed=True, complete=complete)
        if etag:
            with self._lock:
                self._etags[key] = (etag, listing)
        return listing

    def get(self, repo: str, number: int) -> IssueNews:
        """One issue as GitHub's API has it now (`GET /repos/{o}/{r}/issues/{n}`): what a webhook's
        delivery says about it is never acted on, only which issue to read."""
        ref = repo_ref(repo, self._github.owner)
        what = f"issue #{number} of {ref}"
        answer = self._github.conditional_get(f"{repo_path(ref)}/issues/{number}", what=what, etag=None)
        if answer is None:
            raise ForgeFailed(f"GitHub answered 304 for {what} without being asked conditionally")
        data = parse.json_of(answer)
        if not isinstance(data, dict):
            raise ForgeFailed(f"GitHub's answer for {what} is not an object")
        try:
            return issue_of(data, repo)
        except BadPayload as exc:
            raise ForgeFailed(f"GitHub's answer for {what}: {exc}") from None

    def comment(self, repo: str, number: int, body: str) -> None:
        ref = repo_ref(repo, self._github.owner)
        self._github.post_json(
            f"{repo_path(ref)}/issues/{number}/comments",
            {"body": body[:COMMENT_CAP]},
            what=f"a comment on issue #{number} of {ref}",
        )


def _issues(data: object, repo: str) -> list[IssueNews]:
    """The issues of a listing page; pull requests (which the issues API lists too) and malformed items
    are left out."""
    if not isinstance(data, list):
        raise ForgeFailed("GitHub's issue listing is not a list")
    found = []
    for item in data[:100]:
        if not isinstance(item, dict):
            continue
        try:
            issue = issue_of(item, repo)
        except BadPayload:
            continue
        if not issue.is_pull_request:
            found.append(issue)
    return found
