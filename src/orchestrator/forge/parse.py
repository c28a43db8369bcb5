"""GitHub's JSON answers read into our wire models; an unexpected shape is a ForgeError, not a KeyError."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import ValidationError

from orchestrator.forge.errors import ForgeFailed
from orchestrator.forge.models import BranchRef, PullRequest, RateLimit, RepoInfo


class BadAnswer(ForgeFailed):
    pass


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise BadAnswer(f"GitHub answered {response.status_code} with a body that is not JSON") from None


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadAnswer(f"GitHub's answer for {what} is not an object")
    return value


def github_message(response: httpx.Response) -> str:
    """GitHub's `message` and the messages of its `errors`, in one line."""
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or f"HTTP {response.status_code}"
    if not isinstance(data, dict):
        return f"HTTP {response.status_code}"
    parts = [str(data.get("message") or f"HTTP {response.status_code}")]
    parts.extend(error_messages(data))
    return ": ".join(parts)[:1000]


def error_messages(data: dict[str, Any]) -> list[str]:
    messages = []
    for error in data.get("errors") or []:
        if isinstance(error, str):
            messages.append(error)
        elif isinstance(error, dict):
            text = error.get("message") or " ".join(
                str(error[k]) for k in ("resource", "field", "code") if error.get(k)
            )
            messages.append(str(text))
    return messages


def plain_url(url: str) -> str:
    """The URL without any user or password in it."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def repo_info(data: Any) -> RepoInfo:
    repo = _obj(data, "the repository")
    try:
        return RepoInfo(
            full_name=repo["full_name"],
            owner=_obj(repo["owner"], "the repository owner")["login"],
            name=repo["name"],
            default_branch=repo["default_branch"],
            private=repo.get("private", False),
            visibility=repo.get("visibility"),
            html_url=repo["html_url"],
            clone_url=plain_url(repo["clone_url"]),
            description=repo.get("description"),
            archived=repo.get("archived", False),
            fork=repo.get("fork", False),
        )
    except (KeyError, TypeError, ValidationError) as exc:
        raise BadAnswer(f"GitHub's repository answer lacks or mistypes {exc}") from None


def _branch(data: Any, what: str) -> BranchRef:
    ref = _obj(data, what)
    return BranchRef(ref=ref["ref"], sha=ref["sha"], label=ref.get("label"))


def pull_request(data: Any) -> PullRequest:
    pull = _obj(data, "the pull request")
    try:
        user = pull.get("user")
        return PullRequest(
            number=pull["number"],
            state=pull["state"],
            title=pull["title"],
            body=pull.get("body"),
            html_url=pull["html_url"],
            draft=pull.get("draft") or False,
            head=_branch(pull["head"], "the pull request head"),
            base=_branch(pull["base"], "the pull request base"),
            user=user.get("login") if isinstance(user, dict) else None,
            merged=pull.get("merged", pull.get("merged_at") is not None),
            merged_at=pull.get("merged_at"),
            mergeable=pull.get("mergeable"),
            mergeable_state=pull.get("mergeable_state"),
            created_at=pull.get("created_at"),
            updated_at=pull.get("updated_at"),
        )
    except (KeyError, TypeError, ValidationError) as exc:
        raise BadAnswer(f"GitHub's pull request answer lacks or mistypes {exc}") from None


def pull_requests(data: Any) -> list[PullRequest]:
    if not isinstance(data, list):
        raise BadAnswer("GitHub's pull request list is not a list")
    return [pull_request(item) for item in data]


def rate_limit(data: Any) -> RateLimit:
    try:
        rate = _obj(_obj(data, "the rate limit")["rate"], "the rate limit")
        return RateLimit(
            limit=rate["limit"],
            remaining=rate["remaining"],
            used=rate.get("used", rate["limit"] - rate["remaining"]),
            reset_at=datetime.fromtimestamp(int(rate["reset"]), tz=UTC),
        )
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise BadAnswer(f"GitHub's rate limit answer lacks or mistypes {exc}") from None
