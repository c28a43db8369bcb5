"""Issues, labels and issue comments for the fake GitHub, with ETags (a matching If-None-Match is answered
304, and counted), and the `issues` webhook deliveries GitHub would sign and send for them."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_github import Answer, FakeGitHub

_ISSUES = re.compile(
    r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/issues(?:/(?P<number>\d+)(?P<comments>/comments)?)?"
)


@dataclass
class FakeIssue:
    repo: str
    number: int
    title: str
    body: str
    labels: list[str]
    state: str = "open"
    comments: list[str] = field(default_factory=list)

    def json(self, api_url: str) -> dict[str, Any]:
        return {
            "id": 1000 + self.number,
            "number": self.number,
            "title": self.title,
            "body": self.body,
            "state": self.state,
            "labels": [{"id": i, "name": n, "color": "ededed"} for i, n in enumerate(self.labels)],
            "url": f"{api_url}/repos/{self.repo}/issues/{self.number}",
            "html_url": f"https://github.com/{self.repo}/issues/{self.number}",
            "user": {"login": "someone"},
        }


class FakeIssues:
    def __init__(self, fake: FakeGitHub) -> None:
        self._fake = fake
        self._issues: dict[str, dict[int, FakeIssue]] = {}
        self.not_modified = 0
        self.listings = 0
        fake.routes.append(self._route)

    def add(self, repo: str, title: str, body: str = "", labels: tuple[str, ...] = ()) -> FakeIssue:
        with self._fake._lock:
            issues = self._issues.setdefault(repo.lower(), {})
            number = max(issues, default=0) + 1
            issue = FakeIssue(repo, number, title, body, list(labels))
            issues[number] = issue
            return issue

    def close(self, issue: FakeIssue) -> None:
        with self._fake._lock:
            issue.state = "closed"

    def comments(self, issue: FakeIssue) -> list[str]:
        with self._fake._lock:
            return list(issue.comments)

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: Any,
        authed: bool | None,
        headers: dict[str, str],
    ) -> Answer | None:
        match = _ISSUES.fullmatch(path)
        if match is None:
            return None
        repo = f"{match['owner']}/{match['name']}".lower()
        issues = self._issues.get(repo, {})
        if match["number"] is None and method == "GET":
            return self._list(issues, query, headers)
        issue = issues.get(int(match["number"] or 0))
        if issue is None:
            return 404, {"message": "Not Found"}, {}
        if match["comments"] and method == "POST":
            if not authed:
                return 401, {"message": "Requires authentication"}, {}
            if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                return 422, {"message": "Validation Failed"}, {}
            issue.comments.append(body["body"])
            return 201, {"id": len(issue.comments), "body": body["body"]}, {}
        if not match["comments"] and method == "GET":
            return 200, issue.json(self._fake.api_url), {}
        return None

    def _list(
        self, issues: dict[int, FakeIssue], query: dict[str, list[str]], headers: dict[str, str]
    ) -> Answer:
        state = query.get("state", ["open"])[0]
        wanted = set(query.get("labels", [""])[0].split(",")) - {""}
        listed = [
            i.json(self._fake.api_url)
            for i in sorted(issues.values(), key=lambda i: -i.number)
            if (state == "all" or i.state == state) and wanted <= set(i.labels)
        ]
        etag = '"' + hashlib.sha256(json.dumps(listed, sort_keys=True).encode()).hexdigest()[:32] + '"'
        self.listings += 1
        if headers.get("if-none-match") == etag:
            self.not_modified += 1
            return 304, None, {"ETag": etag}
        return 200, listed, {"ETag": etag}


def issues_event(issue: FakeIssue, action: str, api_url: str) -> dict[str, Any]:
    return {
        "action": action,
        "issue": issue.json(api_url),
        "repository": {"full_name": issue.repo, "name": issue.repo.split("/")[1]},
        "sender": {"login": "someone"},
    }


def signed_delivery(
    secret: str, event: str, payload: dict[str, Any], delivery: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers GitHub sends for one delivery."""
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/fake",
    }
