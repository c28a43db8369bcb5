"""What a GitHub webhook delivery says, read from untrusted bytes: its signature checked against the
shared secret, then only the fields the service acts on, each checked and capped."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

SIGNATURE_PREFIX = "sha256="
PULL_EVENTS = frozenset(
    {
        "check_run",
        "check_suite",
        "status",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
    }
)
TITLE_CAP = 200
BODY_CAP = 20_000
MAX_LABELS = 100
_DELIVERY = re.compile(r"[A-Za-z0-9-]{1,100}")
_EVENT = re.compile(r"[a-z_]{1,50}")
_FULL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_MAX_NUMBER = 2**31 - 1


class BadPayload(ValueError):
    pass


def signature_of(secret: str, body: bytes) -> str:
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `X-Hub-Signature-256` is the HMAC-SHA256 of the body with the secret (constant time)."""
    if not secret or header is None:
        return False
    return hmac.compare_digest(signature_of(secret, body).encode(), header.strip().encode("utf-8", "replace"))


def body_key(body: bytes) -> str:
    """The key a delivery's body is remembered under beside delivery ids (which cannot hold a ':'): the
    signature covers the body but not X-GitHub-Delivery, so a captured body replayed under a new id is
    known by this."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def delivery_id(header: str | None) -> str:
    if header is None or not _DELIVERY.fullmatch(header):
        raise BadPayload("X-GitHub-Delivery: missing or not a delivery id")
    return header


def event_name(header: str | None) -> str:
    if header is None or not _EVENT.fullmatch(header):
        raise BadPayload("X-GitHub-Event: missing or not an event name")
    return header


@dataclass(frozen=True)
class IssueNews:
    repo: str
    number: int
    title: str
    body: str
    open: bool
    labels: frozenset[str]
    is_pull_request: bool


@dataclass(frozen=True)
class PullNews:
    repo: str
    pr_number: int | None
    head_sha: str | None


def clean_text(value: object, cap: int) -> str:
    """Text for a task: control characters (but newlines and tabs) dropped, capped."""
    if not isinstance(value, str):
        return ""
    kept = "".join(c for c in value[: cap * 2] if c in "\n\t" or unicodedata.category(c)[0] != "C")
    return kept[:cap]


def _mapping(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadPayload(f"{field}: expected an object")
    return value


def _number(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_NUMBER:
        raise BadPayload(f"{field}: expected a positive number")
    return value


def repo_of(payload: dict[str, Any]) -> str:
    name = _mapping(payload.get("repository"), "repository").get("full_name")
    if not isinstance(name, str) or not _FULL_NAME.fullmatch(name) or ".." in name:
        raise BadPayload("repository.full_name: expected owner/name")
    return name


def labels_of(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    names = (item.get("name") for item in value[:MAX_LABELS] if isinstance(item, dict))
    return frozenset(n[:100] for n in names if isinstance(n, str))


def issue_of(payload: dict[str, Any], repo: str | None = None) -> IssueNews:
    """An issue as the REST API lists it (with `repo`) or as an `issues` event carries it."""
    issue = _mapping(payload.get("issue"), "issue") if repo is None else payload
    return IssueNews(
        repo=repo if repo is not None else repo_of(payload),
        number=_number(issue.get("number"), "issue.number"),
        title=clean_text(issue.get("title"), TITLE_CAP).strip() or "(untitled issue)",
        body=clean_text(issue.get("body"), BODY_CAP),
        open=issue.get("state") == "open",
        labels=labels_of(issue.get("labels")),
        is_pull_request="pull_request" in issue,
    )


def issue_number_of(payload: dict[str, Any]) -> tuple[str, int]:
    """Which issue an `issues` event is about (the repository and number); the rest is not read."""
    issue = _mapping(payload.get("issue"), "issue")
    return repo_of(payload), _number(issue.get("number"), "issue.number")


def _sha(value: object) -> str | None:
    return value if isinstance(value, str) and _SHA.fullmatch(value) else None


def _pr_number(value: object) -> int | None:
    if isinstance(value, dict):
        value = value.get("number")
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_NUMBER else None
    )


def pull_news_of(event: str, payload: dict[str, Any]) -> PullNews:
    """Which PR (or head commit) a CI, review or PR event is about; either may be unknown."""
    repo = repo_of(payload)
    if event in ("pull_request", "pull_request_review", "pull_request_review_comment"):
        pull = _mapping(payload.get("pull_request"), "pull_request")
        head = pull.get("head")
        return PullNews(repo, _pr_number(pull), _sha(head.get("sha")) if isinstance(head, dict) else None)
    if event in ("check_run", "check_suite"):
        run = _mapping(payload.get(event), event)
        pulls = run.get("pull_requests")
        first = pulls[0] if isinstance(pulls, list) and pulls else None
        return PullNews(repo, _pr_number(first), _sha(run.get("head_sha")))
    if event == "status":
        return PullNews(repo, None, _sha(payload.get("sha")))
    raise BadPayload(f"{event}: not an event about a pull request")
