"""The GitHub client against the fake GitHub REST server over real loopback HTTP."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from orchestrator.api.errors import status_of
from orchestrator.forge import (
    ForgeError,
    ForgeInputError,
    ForgeUnavailable,
    GitHubClient,
    NotFound,
    NotMergeable,
    RateLimited,
    Unauthorized,
)
from orchestrator.forge.models import MergeMethod
from orchestrator.forge.ratelimit import WaitPolicy, is_rate_limited, wait_needed
from tests.support.fake_github import FakeGitHub, FakeRepo

OWNER = "acme"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def repo(fake: FakeGitHub) -> FakeRepo:
    return fake.add_repo(OWNER, "widgets", default_branch="develop", description="Widgets")


@pytest.fixture
def client(fake: FakeGitHub) -> Iterator[GitHubClient]:
    with GitHubClient(fake.api_url, fake.token, OWNER, max_rate_limit_wait=5) as github:
        yield github


def test_status_reports_the_user_scopes_and_rate_limit(fake: FakeGitHub, client: GitHubClient) -> None:
    status = client.status()
    assert status.configured and status.valid
    assert status.login == "octo-bot"
    assert status.scopes == ["repo", "workflow"]
    assert status.rate_limit is not None
    assert status.rate_limit.remaining == fake.rate_limit - 1
    assert status.rate_limit.reset_at > datetime.now(UTC)
    assert fake.token not in status.model_dump_json()
    assert [r.path for r in fake.requests] == ["/user", "/rate_limit"]
    assert all(r.headers["authorization"] == f"Bearer {fake.token}" for r in fake.requests)
    assert all(r.headers["x-github-api-version"] == "2022-11-28" for r in fake.requests)


def test_status_of_a_fine_grained_token_has_no_scopes(fake: FakeGitHub, client: GitHubClient) -> None:
    fake.scopes = None
    assert client.status().scopes is None


def test_status_without_a_token_asks_nothing(fake: FakeGitHub) -> None:
    with GitHubClient(fake.api_url, None, OWNER) as github:
        status = github.status()
    assert not status.configured
    assert status.valid is None
    assert fake.requests == []


def test_status_with_a_wrong_token_says_invalid(fake: FakeGitHub) -> None:
    with GitHubClient(fake.api_url, "ghp_WrongToken0123456789abcdefABCDEF01", OWNER) as github:
        status = github.status()
    assert status.configured and status.valid is False
    assert status.error is not None and "Bad credentials" in status.error
    assert "ghp_WrongToken" not in status.model_dump_json()


def test_repository_info_and_default_branch(fake: FakeGitHub, repo: FakeRepo, client: GitHubClient) -> None:
    info = client.repo("widgets")
    assert (info.full_name, info.owner, info.name) == ("acme/widgets", OWNER, "widgets")
    assert info.default_branch == "develop"
    assert info.clone_url == "https://github.com/acme/widgets.git"
    assert not info.private
    assert client.default_branch("acme/widgets") == "develop"
    assert fake.requests[-1].path == "/repos/acme/widgets"


def test_owner_slash_name_names_another_owner(fake: FakeGitHub, client: GitHubClient) -> None:
    fake.add_repo("other-org", "tools", default_branch="trunk")
    assert client.default_branch("other-org/tools") == "trunk"
    with pytest.raises(NotFound):
        client.repo("tools")


def test_clone_urls_are_plain(fake: FakeGitHub, client: GitHubClient) -> None:
    fake.add_repo(OWNER, "dirty", clone_url="https://someone:secret@github.com/acme/dirty.git")
    assert client.clone_url("dirty") == "https://github.com/acme/dirty.git"
    fake.add_repo(OWNER, "clean")
    assert client.clone_url("clean") == "https://github.com/acme/clean.git"
    assert not hasattr(client, "authenticated_clone_url")


def test_create_pr_defaults_base_to_the_default_branch(
    fake: FakeGitHub, repo: FakeRepo, client: GitHubClient
) -> None:
    pull = client.create_pull("widgets", head="task/1-fix", title="Fix", body="Fixes #1")
    assert pull.created
    assert (pull.number, pull.state, pull.title, pull.body) == (1, "open", "Fix", "Fixes #1")
    assert (pull.head.ref, pull.base.ref) == ("task/1-fix", "develop")
    assert pull.head.label == "acme:task/1-fix"
    [sent] = fake.requests_to("/repos/acme/widgets/pulls", "POST")
    assert sent.body == {
        "title": "Fix",
        "head": "task/1-fix",
        "base": "develop",
        "body": "Fixes #1",
        "draft": False,
    }
    assert fake.requests_to("/repos/acme/widgets", "GET")


def test_create_pr_with_an_explicit_base_does_not_ask_for_the_default(
    fake: FakeGitHub, repo: FakeRepo, client: GitHubClient
) -> None:
    pull = client.create_pull("widgets", head="task/2-x", title="X", base="release/1.0")
    assert pull.base.ref == "release/1.0"
    assert [r.method for r in fake.requests] == ["POST"]


def test_an_existing_pr_for_the_head_is_returned(
    fake: FakeGitHub, repo: FakeRepo, client: GitHubClient
) -> None:
    first = client.create_pull("widgets", head="task/3-y", title="Y")
    again = client.create_pull("widgets", head="task/3-y", title="Y again")
    assert not again.created
    assert again.number == first.number
    assert again.title == "Y"
    [listed] = fake.requests_to("/repos/acme/widgets/pulls", "GET")
    assert listed.query["head"] == ["acme:task/3-y"]
    assert listed.query["state"] == ["open"]


def test_other_validation_errors_are_not_mistaken_for_an_existing_pr(
    repo: FakeRepo, client: GitHubClient
) -> None:
    with pytest.raises(ForgeError) as caught:
        client.create_pull("widgets", head="develop", title="Nothing")
    assert status_of(caught.value) == 422
    assert "No commits between develop and develop" in str(caught.value)


def test_get_pr(fake: FakeGitHub, repo: FakeRepo, client: GitHubClient) -> None:
    seeded = fake.add_pull(repo, "task/4-z", title="Z", body="zzz", mergeable_state="behind")
    pull = client.get_pull("widgets", seeded.number)
    assert (pull.title, pull.body, pull.head.sha) == ("Z", "zzz", seeded.head_sha)
    assert pull.mergeable and pull.mergeable_state == "behind" and not pull.merged
    with pytest.raises(NotFound, match="pull request #99 of acme/widgets"):
        client.get_pull("widgets", 99)


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_merge(fake: FakeGitHub, repo: FakeRepo, client: GitHubClient, method: MergeMethod) -> None:
    seeded = fake.add_pull(repo, f"task/5-{method}")
    result = client.merge_pull("widgets", seeded.number, merge_method=method, sha=seeded.head_sha)
    assert result.merged and result.merge_method == method and result.sha
    assert result.message == "Pull Request successfully merged"
    assert fake.pull(repo, seeded.number).merge_method == method
    merged = client.get_pull("widgets", seeded.number)
    assert merged.merged and merged.state == "closed" and merged.merged_at is not None


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        ({"mergeable": False, "mergeable_state": "dirty"}, "merge conflicts"),
        ({"mergeable": False, "mergeable_state": "blocked"}, "required reviews or status checks"),
        ({"draft": True}, "draft"),
        ({"state": "closed"}, "it is closed"),
    ],
)
def test_not_mergeable_says_why(
    fake: FakeGitHub, repo: FakeRepo, client: GitHubClient, setup: dict[str, Any], why: str
) -> None:
    seeded = fake.add_pull(repo, "task/6-conflict", **setup)
    with pytest.raises(NotMergeable) as caught:
        client.merge_pull("widgets", seeded.number)
    assert status_of(caught.value) == 409
    assert "Pull Request is not mergeable" in str(caught.value)
    assert why in str(caught.value)


def test_merging_twice_says_it_is_merged(fake: FakeGitHub, repo: FakeRepo, client: GitHubClient) -> None:
    seeded = fake.add_pull(repo, "task/7-twice")
    client.merge_pull("widgets", seeded.number)
    with pytest.raises(NotMergeable, match="already merged"):
        client.merge_pull("widgets", seeded.number)


def test_a_disallowed_merge_method_uses_githubs_reason(fake: FakeGitHub, client: GitHubClient) -> None:
    repo = fake.add_repo(OWNER, "strict", allow_squash_merge=False)
    seeded = fake.add_pull(repo, "task/8-squash")
    with pytest.raises(NotMergeable, match="Squash merges are not allowed on this repository"):
        client.merge_pull("strict", seeded.number, merge_method="squash")


def test_a_moved_head_is_a_conflict(fake: FakeGitHub, repo: FakeRepo, client: GitHubClient) -> None:
    seeded = fake.add_pull(repo, "task/9-moved")
    with pytest.raises(NotMergeable, match="Head branch was modified"):
        client.merge_pull("widgets", seeded.number, sha="0" * 40)


def test_list_prs_follows_every_page(fake: FakeGitHub, repo: FakeRepo, client: GitHubClient) -> None:
    fake.max_per_page = 2
    for i in range(5):
        fake.add_pull(repo, f"task/{i}-page")
    fake.add_pull(repo, "task/closed", state="closed")
    pulls = client.list_pulls("widgets")
    assert sorted(p.number for p in pulls) == [1, 2, 3, 4, 5]
    pages = fake.requests_to("/repos/acme/widgets/pulls", "GET")
    assert len(pages) == 3
    assert [r.query.get("page", ["1"])[0] for r in pages] == ["1", "2", "3"]
    assert all(r.headers["authorization"] == f"Bearer {fake.token}" for r in pages)
    assert len(client.list_pulls("widgets", state="all")) == 6
    assert [p.head.ref for p in client.list_pulls("widgets", state="closed")] == ["task/closed"]


def test_list_prs_filters_by_head_and_base(fake: FakeGitHub, repo: FakeRepo, client: GitHubClient) -> None:
    fake.add_pull(repo, "task/a", base="develop")
    fake.add_pull(repo, "task/b", base="release")
    assert [p.head.ref for p in client.list_pulls("widgets", head="task/a")] == ["task/a"]
    assert [p.head.ref for p in client.list_pulls("widgets", head="acme:task/b")] == ["task/b"]
    assert [p.base.ref for p in client.list_pulls("widgets", base="release")] == ["release"]
    assert client.list_pulls("widgets", head="someone-else:task/a") == []


def test_an_enterprise_api_path_prefix_works() -> None:
    with FakeGitHub(prefix="/api/v3") as fake:
        repo = fake.add_repo(OWNER, "widgets")
        fake.max_per_page = 1
        fake.add_pull(repo, "task/1")
        fake.add_pull(repo, "task/2")
        with GitHubClient(fake.api_url, fake.token, OWNER) as github:
            assert len(github.list_pulls("widgets")) == 2
            assert github.repo("widgets").default_branch == "main"
        assert all(r.path.startswith("/api/v3/") for r in fake.requests)


def test_a_pagination_link_to_another_host_is_not_followed() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        link = '<https://evil.example/repos/acme/w/pulls?page=2>; rel="next"'
        return httpx.Response(200, json=[], headers={"Link": link})

    with (
        GitHubClient(
            "https://api.github.test", "t0ken-value", OWNER, transport=httpx.MockTransport(answer)
        ) as gh,
        pytest.raises(ForgeError, match="pagination link leaves"),
    ):
        gh.list_pulls("w")
    assert all(c.startswith("https://api.github.test/") for c in calls)


def test_a_429_is_waited_out_then_succeeds(fake: FakeGitHub, repo: FakeRepo, client: GitHubClient) -> None:
    fake.rate_limit_next(times=1, retry_after=1)
    started = time.monotonic()
    assert client.default_branch("widgets") == "develop"
    assert time.monotonic() - started >= 0.9
    assert len(fake.requests_to("/repos/acme/widgets")) == 2


def test_an_exhausted_primary_limit_waits_for_the_reset(
    fake: FakeGitHub, repo: FakeRepo, client: GitHubClient
) -> None:
    fake.exhaust_rate_limit(times=1, reset_in=1)
    assert client.repo("widgets").name == "widgets"
    assert len(fake.requests_to("/repos/acme/widgets")) == 2


def test_a_rate_limit_beyond_the_bound_raises_with_when_to_retry(
    fake: FakeGitHub, repo: FakeRepo, client: GitHubClient
) -> None:
    fake.exhaust_rate_limit(times=1, reset_in=3600)
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        client.repo("widgets")
    assert time.monotonic() - started < 2
    assert 3500 < caught.value.retry_after <= 3601
    assert caught.value.retry_at > datetime.now(UTC)
    assert status_of(caught.value) == 503
    assert "retry in" in str(caught.value)


def test_a_429_asking_for_longer_than_the_bound_raises(
    fake: FakeGitHub, repo: FakeRepo, client: GitHubClient
) -> None:
    fake.rate_limit_next(times=1, retry_after=60)
    with pytest.raises(RateLimited) as caught:
        client.repo("widgets")
    assert caught.value.retry_after == 60
    assert len(fake.requests) == 1


def test_a_wrong_token_is_unauthorized(fake: FakeGitHub, repo: FakeRepo) -> None:
    wrong = "ghp_WrongToken0123456789abcdefABCDEF01"
    with GitHubClient(fake.api_url, wrong, OWNER) as github, pytest.raises(Unauthorized) as caught:
        github.repo("widgets")
    assert status_of(caught.value) == 401
    assert "Bad credentials" in str(caught.value)
    assert wrong not in str(caught.value)


def test_an_unknown_repository_is_not_found(repo: FakeRepo, client: GitHubClient) -> None:
    with pytest.raises(NotFound, match="repository acme/nothing") as caught:
        client.repo("nothing")
    assert status_of(caught.value) == 404


def test_server_errors_and_refused_connections_are_unavailable(
    fake: FakeGitHub, repo: FakeRepo, client: GitHubClient
) -> None:
    fake.fail_next(502, message="Bad Gateway")
    with pytest.raises(ForgeUnavailable, match="502"):
        client.repo("widgets")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    github = GitHubClient(f"http://127.0.0.1:{port}", fake.token, OWNER)
    with github, pytest.raises(ForgeUnavailable, match="unreachable") as caught:
        github.repo("widgets")
    assert status_of(caught.value) == 503


@pytest.mark.parametrize(
    "name", ["../x", "-x", "/abs", "..", ".hidden", "a/b/c", "acme/..", "acme/-x", "-o/x", "x\n"]
)
def test_bad_repository_names_are_refused_before_any_request(
    fake: FakeGitHub, client: GitHubClient, name: str
) -> None:
    with pytest.raises(ForgeInputError) as caught:
        client.repo(name)
    assert caught.value.field == "repo"
    assert status_of(caught.value) == 422
    assert fake.requests == []


@pytest.mark.parametrize(
    ("head", "base", "field"),
    [
        ("../x", None, "head"),
        ("-x", None, "head"),
        ("a..b", None, "head"),
        ("ok", "-b", "base"),
        ("ok", "a b", "base"),
    ],
)
def test_bad_branch_names_are_refused_before_any_request(
    fake: FakeGitHub, client: GitHubClient, head: str, base: str | None, field: str
) -> None:
    with pytest.raises(ForgeInputError) as caught:
        client.create_pull("widgets", head=head, base=base, title="t")
    assert caught.value.field == field
    assert fake.requests == []


def test_the_token_never_appears_in_errors_or_results(
    fake: FakeGitHub, repo: FakeRepo, client: GitHubClient
) -> None:
    token = fake.token
    seen: list[str] = [repr(client)]
    fake.fail_next(500, message=f"internal error while checking token {token}")
    with pytest.raises(ForgeUnavailable) as unavailable:
        client.repo("widgets")
    seen.append(str(unavailable.value))
    assert "[REDACTED]" in str(unavailable.value)
    fake.exhaust_rate_limit(reset_in=3600)
    with pytest.raises(RateLimited) as limited:
        client.repo("widgets")
    seen.append(str(limited.value))
    for result in (
        client.status(),
        client.repo("widgets"),
        client.create_pull("widgets", head="task/t", title="t"),
        client.list_pulls("widgets"),
        client.clone_url("widgets"),
    ):
        seen.extend([repr(result), str(result)])
    with pytest.raises(NotFound) as missing:
        client.get_pull("widgets", 404)
    seen.append(str(missing.value))
    assert all(token not in text for text in seen)


def test_wait_policy_and_headers() -> None:
    policy = WaitPolicy(max_wait=10, max_retries=2)
    assert policy.should_wait(4, 5, 0)
    assert not policy.should_wait(6, 5, 0)
    assert not policy.should_wait(1, 0, 2)
    assert wait_needed({"retry-after": "7"}, now=100) == 7
    assert wait_needed({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "130"}, now=100) == 30
    assert wait_needed({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "90"}, now=100) == 0
    assert wait_needed({}, now=100) == 60
    assert is_rate_limited(429, {})
    assert is_rate_limited(403, {"x-ratelimit-remaining": "0"})
    assert is_rate_limited(403, {}, "You have exceeded a secondary rate limit")
    assert not is_rate_limited(403, {"x-ratelimit-remaining": "10"}, "Resource not accessible by integration")
