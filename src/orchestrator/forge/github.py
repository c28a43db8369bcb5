"""A typed GitHub REST client on httpx: repositories, pull requests, token status, rate limits."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx

from orchestrator import __version__
from orchestrator.domain.redact import Redactor
from orchestrator.forge import parse
from orchestrator.forge.errors import (
    Conflict,
    Forbidden,
    ForgeError,
    ForgeFailed,
    ForgeUnavailable,
    NotFound,
    NotMergeable,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from orchestrator.forge.models import (
    CreatedPullRequest,
    MergeMethod,
    MergeResult,
    PullRequest,
    PullState,
    RepoInfo,
    TokenStatus,
)
from orchestrator.forge.names import RepoRef, check_branch, head_spec, repo_ref
from orchestrator.forge.ratelimit import WaitPolicy, is_rate_limited, wait_needed

API_VERSION = "2022-11-28"
PR_EXISTS = "a pull request already exists"
MAX_PAGES = 100

_WHY_NOT_MERGEABLE = {
    "dirty": "it has merge conflicts with the base branch",
    "blocked": "required reviews or status checks are not satisfied",
    "behind": "the head branch is behind the base branch",
    "draft": "it is a draft",
    "unknown": "GitHub is still computing whether it can be merged; retry shortly",
}


class GitHubClient:
    """GitHub's REST API for one account (`owner`); every method raises a `ForgeError` on failure."""

    def __init__(
        self,
        api_url: str,
        token: str | None,
        owner: str,
        *,
        transport: httpx.BaseTransport | None = None,
        max_rate_limit_wait: float = 10.0,
        max_rate_limit_retries: int = 5,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.owner = owner
        self._token = token
        self._policy = WaitPolicy(max_wait=max_rate_limit_wait, max_retries=max_rate_limit_retries)
        self._sleep = sleep
        self._clock = clock
        self.redact = Redactor([token])
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"orchestrator/{__version__}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._new_client = functools.partial(  # Headers: its repr hides the token
            httpx.Client,
            base_url=self.api_url + "/",
            headers=httpx.Headers(headers),
            timeout=timeout,
            transport=transport,
        )
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @property
    def _http(self) -> httpx.Client:
        """Made at the first request: its TLS context (the CA bundle, MBs) only in a service that calls
        GitHub."""
        with self._client_lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def __repr__(self) -> str:
        return f"GitHubClient(api_url={self.api_url!r}, owner={self.owner!r}, token_set={self.configured})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()

    @property
    def configured(self) -> bool:
        return bool(self._token)

    def ref(self, repo: str) -> RepoRef:
        return repo_ref(repo, self.owner)

    def status(self) -> TokenStatus:
        base = TokenStatus(configured=self.configured, api_url=self.api_url, owner=self.owner)
        if not self._token:
            return base
        try:
            user = self._send("GET", "user", what="the token's user")
            rate = self._send("GET", "rate_limit", what="the rate limit")
        except Unauthorized as exc:
            return base.model_copy(update={"valid": False, "error": exc.message})
        scopes = user.headers.get("x-oauth-scopes")
        account = parse.json_of(user)
        return base.model_copy(
            update={
                "valid": True,
                "login": account.get("login") if isinstance(account, dict) else None,
                "scopes": None if scopes is None else [s.strip() for s in scopes.split(",") if s.strip()],
                "rate_limit": parse.rate_limit(parse.json_of(rate)),
            }
        )

    def repo(self, repo: str) -> RepoInfo:
        ref = self.ref(repo)
        return parse.repo_info(parse.json_of(self._send("GET", _repo_path(ref), what=f"repository {ref}")))

    def default_branch(self, repo: str) -> str:
        return self.repo(repo).default_branch

    def clone_url(self, repo: str) -> str:
        """The plain clone URL, without credentials."""
        return self.repo(repo).clone_url

    def create_pull(
        self,
        repo: str,
        *,
        head: str,
        title: str,
        body: str = "",
        base: str | None = None,
        draft: bool = False,
    ) -> CreatedPullRequest:
        """Opens a PR from `head` (`branch` or `owner:branch`); an open PR for that head is returned."""
        ref = self.ref(repo)
        head_owner, head_branch = head_spec(head, ref.owner)
        head_arg = head_branch if head_owner == ref.owner else f"{head_owner}:{head_branch}"
        base = check_branch(base, "base") if base is not None else self.default_branch(repo)
        payload = {"title": title, "head": head_arg, "base": base, "body": body, "draft": draft}
        try:
            response = self._send("POST", f"{_repo_path(ref)}/pulls", json=payload, what=f"a PR in {ref}")
        except ValidationFailed as exc:
            if not any(PR_EXISTS in e.lower() for e in exc.errors):
                raise
            existing = self.list_pulls(repo, state="open", head=f"{head_owner}:{head_branch}")
            if not existing:
                raise
            return CreatedPullRequest(**existing[0].model_dump(), created=False)
        pull = parse.pull_request(parse.json_of(response))
        return CreatedPullRequest(**pull.model_dump(), created=True)

    def get_pull(self, repo: str, number: int) -> PullRequest:
        ref = self.ref(repo)
        what = f"pull request #{number} of {ref}"
        response = self._send("GET", f"{_repo_path(ref)}/pulls/{number}", what=what)
        return parse.pull_request(parse.json_of(response))

    def merge_pull(
        self,
        repo: str,
        number: int,
        *,
        merge_method: MergeMethod = "merge",
        commit_title: str | None = None,
        commit_message: str | None = None,
        sha: str | None = None,
    ) -> MergeResult:
        ref = self.ref(repo)
        payload: dict[str, Any] = {"merge_method": merge_method}
        optional = {"commit_title": commit_title, "commit_message": commit_message, "sha": sha}
        payload.update({k: v for k, v in optional.items() if v is not None})
        what = f"pull request #{number} of {ref}"
        try:
            response = self._send("PUT", f"{_repo_path(ref)}/pulls/{number}/merge", json=payload, what=what)
        except Conflict as exc:
            raise self._not_mergeable(repo, number, exc) from None
        data = parse.json_of(response)
        return MergeResult(
            repo=ref.full_name,
            number=number,
            merged=bool(data.get("merged")),
            sha=data.get("sha"),
            message=str(data.get("message", "")),
            merge_method=merge_method,
        )

    def list_pulls(
        self,
        repo: str,
        *,
        state: PullState = "open",
        head: str | None = None,
        base: str | None = None,
    ) -> list[PullRequest]:
        """Every matching PR, following GitHub's `Link: rel="next"` through all pages."""
        ref = self.ref(repo)
        params: dict[str, str | int] = {"state": state, "per_page": 100}
        if head is not None:
            head_owner, head_branch = head_spec(head, ref.owner)
            params["head"] = f"{head_owner}:{head_branch}"
        if base is not None:
            params["base"] = check_branch(base, "base")
        what = f"pull requests of {ref}"
        response = self._send("GET", f"{_repo_path(ref)}/pulls", params=params, what=what)
        pulls = parse.pull_requests(parse.json_of(response))
        for _ in range(MAX_PAGES):
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return pulls
            response = self._send("GET", self._same_origin(next_url), what=what)
            pulls.extend(parse.pull_requests(parse.json_of(response)))
        raise ForgeFailed(f"{what}: more than {MAX_PAGES} pages")

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: dict[str, str | int] | None = None,
        json: dict[str, Any] | None = None,
    ) -> httpx.Response:
        response = self._request(method, url, what=what, params=params, json=json)
        assert response is not None  # 304 only answers a conditional request
        return response

    def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: dict[str, str | int] | None = None,
        json: dict[str, Any] | None = None,
        etag: str | None = None,
    ) -> httpx.Response | None:
        """One call, waiting out a rate limit (primary or secondary) while the policy allows; None for a
        304 Not Modified answering `If-None-Match: etag`."""
        waited = 0.0
        retries = 0
        headers = {"If-None-Match": etag} if etag else None
        while True:
            try:
                response = self._http.request(method, url, params=params, json=json, headers=headers)
            except httpx.HTTPError as exc:
                message = f"GitHub is unreachable at {self.api_url} ({type(exc).__name__}: {exc})"
                raise ForgeUnavailable(self.redact(message)) from None
            if etag and response.status_code == 304:
                return None
            if response.is_success:
                return response
            message = self.redact(parse.github_message(response))
            if not is_rate_limited(response.status_code, response.headers, message):
                raise self._error(response.status_code, message, what)
            now = self._clock()
            needed = wait_needed(response.headers, now)
            if not self._policy.should_wait(needed, waited, retries):
                raise RateLimited(
                    f"GitHub's rate limit is exhausted for {what} ({message}); retry in {needed:.0f} s",
                    retry_after=max(needed, 1.0),
                    now=now,
                )
            self._sleep(needed)
            waited += needed
            retries += 1

    def _error(self, status: int, message: str, what: str) -> ForgeError:
        if status == 401:
            if not self._token:
                return Unauthorized(f"GitHub needs a token for {what}: set GITHUB_TOKEN ({message})")
            return Unauthorized(f"GitHub rejected the token for {what}: {message}")
        if status == 403:
            return Forbidden(f"GitHub refused access to {what}: {message}")
        if status == 404:
            return NotFound(f"{what} not found on GitHub, or the token cannot see it ({message})")
        if status in (405, 409):
            return Conflict(f"GitHub refused {what}: {message}")
        if status == 422:
            return ValidationFailed(f"GitHub refused {what}: {message}", errors=[message])
        if status >= 500:
            return ForgeUnavailable(f"GitHub answered {status} for {what}: {message}")
        return ForgeFailed(f"GitHub answered {status} for {what}: {message}")

    def _not_mergeable(self, repo: str, number: int, exc: Conflict) -> NotMergeable:
        why = None
        with contextlib.suppress(ForgeError):
            why = _why_not_mergeable(self.get_pull(repo, number))
        message = exc.message if why is None else f"{exc.message} ({why})"
        return NotMergeable(message, reason=why)

    def _same_origin(self, url: str) -> str:
        """A pagination link, checked to point at our API so the token goes nowhere else."""
        given, ours = urlsplit(url), urlsplit(self.api_url)
        if (given.scheme, given.netloc) != (ours.scheme, ours.netloc):
            raise ForgeFailed(f"GitHub's pagination link leaves {self.api_url}; not followed")
        return url

    def conditional_get(
        self, url: str, *, what: str, etag: str | None, params: dict[str, str | int] | None = None
    ) -> httpx.Response | None:
        """A GET with `If-None-Match: etag`: None when GitHub answers 304 Not Modified (which costs no
        rate limit); rate limits (primary and secondary) handled as for every other call."""
        return self._request("GET", url, what=what, params=params, etag=etag)

    def post_json(self, url: str, payload: dict[str, Any], *, what: str) -> httpx.Response:
        return self._send("POST", url, json=payload, what=what)

    def next_page(self, response: httpx.Response) -> str | None:
        """The `Link: rel="next"` of a listing, checked to stay on this API."""
        url = response.links.get("next", {}).get("url")
        return self._same_origin(url) if url else None

    def page_link(self, response: httpx.Response, rel: str) -> str | None:
        """A listing's `Link` of relation `rel` (`next`, `prev`, `first`, `last`), checked as `next_page`."""
        url = response.links.get(rel, {}).get("url")
        return self._same_origin(url) if url else None


def repo_path(ref: RepoRef) -> str:
    return _repo_path(ref)


def _repo_path(ref: RepoRef) -> str:
    return f"repos/{quote(ref.owner, safe='')}/{quote(ref.name, safe='')}"


def _why_not_mergeable(pull: PullRequest) -> str | None:
    if pull.merged:
        return "it is already merged"
    if pull.state == "closed":
        return "it is closed"
    if pull.draft:
        return _WHY_NOT_MERGEABLE["draft"]
    if pull.mergeable is False and pull.mergeable_state in (None, "unknown"):
        return _WHY_NOT_MERGEABLE["dirty"]
    return _WHY_NOT_MERGEABLE.get(pull.mergeable_state or "")
