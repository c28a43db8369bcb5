"""What a GitHub webhook delivery says: its signature, and the fields the service acts on, from hostile
payloads."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.domain import github_news as news
from orchestrator.domain.issue_comments import issue_task_id, task_ended

SECRET = "It's a Secret to Everybody"
SHA = "a" * 40


def test_the_signature_is_githubs_hmac_sha256_of_the_body() -> None:
    # GitHub's documented example (docs: "Validating webhook deliveries")
    body = b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert news.signature_of(SECRET, body) == expected
    assert news.signed(SECRET, body, expected)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18",
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\u00e9",
    ],
)
def test_a_missing_or_wrong_signature_is_refused(header: str | None) -> None:
    assert not news.signed(SECRET, b"Hello, World!", header)


def test_no_secret_signs_nothing() -> None:
    assert not news.signed("", b"x", news.signature_of("", b"x"))


def test_the_body_is_what_is_signed() -> None:
    assert not news.signed(SECRET, b"Hello, World?", news.signature_of(SECRET, b"Hello, World!"))


@pytest.mark.parametrize("value", [None, "", "a b", "x" * 101, "../etc", "id\n"])
def test_a_delivery_id_must_be_an_id(value: str | None) -> None:
    with pytest.raises(news.BadPayload):
        news.delivery_id(value)


def issue_event(**issue: Any) -> dict[str, Any]:
    base = {"number": 7, "title": "Fix it", "body": "Please", "state": "open", "labels": [{"name": "agent"}]}
    return {"action": "opened", "issue": {**base, **issue}, "repository": {"full_name": "acme/calc"}}


def test_an_issue_event_gives_the_issue() -> None:
    issue = news.issue_of(issue_event())
    assert issue == news.IssueNews("acme/calc", 7, "Fix it", "Please", True, frozenset({"agent"}), False)


def test_issue_text_is_stripped_of_control_characters_and_capped() -> None:
    issue = news.issue_of(
        issue_event(title="a\x1b[31mb\u202ec" + "t" * 500, body="line\n\tx\x00y" + "b" * 50_000)
    )
    assert issue.title == ("a[31mbc" + "t" * 500)[: news.TITLE_CAP]
    assert issue.body.startswith("line\n\txy")
    assert len(issue.body) == news.BODY_CAP


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"issue": [], "repository": {"full_name": "acme/calc"}},
        issue_event(number="7"),
        issue_event(number=True),
        issue_event(number=-1),
        issue_event(number=2**40),
        {**issue_event(), "repository": {"full_name": "acme/../etc"}},
        {**issue_event(), "repository": {"full_name": "acme"}},
        {**issue_event(), "repository": "acme/calc"},
    ],
)
def test_a_malformed_issue_event_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(news.BadPayload):
        news.issue_of(payload)


def test_odd_labels_and_a_missing_title_are_tolerated() -> None:
    issue = news.issue_of(
        issue_event(labels=["agent", {"name": 3}, {"name": "x" * 500}], title=None, body=None)
    )
    assert issue.labels == frozenset({"x" * 100})
    assert issue.title == "(untitled issue)" and issue.body == ""


def test_pull_news_of_each_event_kind() -> None:
    repo = {"repository": {"full_name": "acme/calc"}}
    pull = {"number": 3, "head": {"sha": SHA}}
    assert news.pull_news_of("pull_request", {**repo, "pull_request": pull}) == news.PullNews(
        "acme/calc", 3, SHA
    )
    assert news.pull_news_of("pull_request_review", {**repo, "pull_request": pull}).pr_number == 3
    run = {"head_sha": SHA, "pull_requests": [{"number": 4}]}
    assert news.pull_news_of("check_run", {**repo, "check_run": run}) == news.PullNews("acme/calc", 4, SHA)
    assert news.pull_news_of("check_suite", {**repo, "check_suite": {"head_sha": "zz"}}) == news.PullNews(
        "acme/calc", None, None
    )
    assert news.pull_news_of("status", {**repo, "sha": SHA}) == news.PullNews("acme/calc", None, SHA)
    with pytest.raises(news.BadPayload):
        news.pull_news_of("pull_request", repo)


def test_an_issue_has_one_task_id_whatever_the_spelling_of_its_repository() -> None:
    assert issue_task_id("Acme/Calc", 7) == issue_task_id("acme/calc", 7) == "gh-acme.calc-7"
    assert issue_task_id("a-b/c", 1) != issue_task_id("a/b-c", 1)


def test_the_end_comment_says_outcome_pr_and_cost() -> None:
    text = task_ended(
        "t1", "failed", "https://github.com/acme/calc/pull/3", "boom `rm` @org/team" + "x" * 900, 1.234
    )
    assert "Task `t1` failed." in text and "https://github.com/acme/calc/pull/3" in text and "$1.23" in text
    assert "`rm`" not in text and "@org" not in text and len(text) < 800
