"""A fake GitHub REST API on loopback, from GitHub's documented shapes: repositories, PRs, errors."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.support.fake_github_checks import FakeChecks

__all__ = ["FakeGitHub", "FakePull", "FakeRepo", "Recorded"]

DOCS = "https://docs.github.com/rest"
_REPO_PATH = re.compile(r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?")
_PULL_PATH = re.compile(r"/pulls/(?P<number>\d+)(?P<merge>/merge)?")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha() -> str:
    return secrets.token_hex(20)


@dataclass
class FakeRepo:
    owner: str
    name: str
    default_branch: str = "main"
    private: bool = False
    clone_url: str | None = None
    description: str | None = None
    allow_merge_commit: bool = True
    allow_squash_merge: bool = True
    allow_rebase_merge: bool = True

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class FakePull:
    repo: FakeRepo
    number: int
    title: str
    head_ref: str
    base_ref: str
    head_owner: str
    body: str | None = None
    state: str = "open"
    draft: bool = False
    mergeable: bool | None = True
    mergeable_state: str = "clean"
    merged: bool = False
    merged_at: str | None = None
    merge_method: str | None = None
    merge_commit_sha: str | None = None
    head_sha: str = field(default_factory=_sha)
    base_sha: str = field(default_factory=_sha)
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class _Fault:
    status: int
    times: int
    headers: dict[str, str]
    body: dict[str, Any]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.fake._stopping.is_set():
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeGitHub/1.0"

    @property
    def fake(self) -> FakeGitHub:
        server = self.server
        assert isinstance(server, _Server)
        return server.fake

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(400, {"message": "Problems parsing JSON", "documentation_url": DOCS})
            return
        status, payload, headers = self.fake._dispatch(method, self.path, dict(self.headers.items()), body)
        self._send(status, payload, headers)

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode() if status != 304 else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Request-Id", secrets.token_hex(8).upper())
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


Answer = tuple[int, Any, dict[str, str]]
# (method, path, query, body, authenticated, lower-cased headers) -> an answer, or None to pass
Route = Callable[[str, str, dict[str, list[str]], Any, bool | None, dict[str, str]], Answer | None]


def _error(status: int, message: str, **extra: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    return status, {"message": message, **extra, "documentation_url": DOCS, "status": str(status)}, {}


class FakeGitHub:
    """GitHub's REST API for the endpoints the service uses, on 127.0.0.1, with injectable failures."""

    def __init__(
        self,
        *,
        token: str = "ghp_FakeToken0123456789abcdefABCDEF012345",
        login: str = "octo-bot",
        scopes: str | None = "repo, workflow",
        prefix: str = "",
    ) -> None:
        self.token = token
        self.login = login
        self.scopes = scopes
        self.prefix = prefix.rstrip("/")
        self.max_per_page = 100
        self.rate_limit = 5000
        self.requests: list[Recorded] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._repos: dict[str, FakeRepo] = {}
        self._pulls: dict[str, dict[int, FakePull]] = {}
        self._faults: list[_Fault] = []
        # Extra endpoints (e.g. fake_github_issues): each answers a request or returns None, under the lock.
        self.routes: list[Route] = []
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.checks = FakeChecks(self)
        # With a git server's root (`<root>/<owner>/<name>.git`), a PR's head is its branch's tip there, as
        # on GitHub, where a push to the branch moves the PR; else the `head_sha` the test set.
        self.git_root: Path | None = None

    def start(self) -> FakeGitHub:
        if self._server is not None:
            raise RuntimeError("FakeGitHub already started")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        thread.join()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeGitHub not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.origin + self.prefix

    def add_repo(self, owner: str, name: str, **fields: Any) -> FakeRepo:
        repo = FakeRepo(owner, name, **fields)
        with self._lock:
            self._repos[repo.full_name.lower()] = repo
            self._pulls.setdefault(repo.full_name.lower(), {})
        return repo

    def add_pull(
        self, repo: FakeRepo, head: str, *, base: str | None = None, title: str | None = None, **fields: Any
    ) -> FakePull:
        with self._lock:
            pulls = self._pulls[repo.full_name.lower()]
            number = max(pulls, default=0) + 1
            pull = FakePull(
                repo=repo,
                number=number,
                title=title or f"PR {number}",
                head_ref=head,
                base_ref=base or repo.default_branch,
                head_owner=fields.pop("head_owner", repo.owner),
                **fields,
            )
            pulls[number] = pull
        return pull

    def pull(self, repo: FakeRepo, number: int) -> FakePull:
        with self._lock:
            return self._pulls[repo.full_name.lower()][number]

    def head_of(self, pull: FakePull) -> str:
        """The PR's head commit: its branch's tip on the git server when there is one."""
        if self.git_root is not None:
            bare = self.git_root / pull.repo.owner / f"{pull.repo.name}.git"
            proc = subprocess.run(
                [
                    "git",
                    f"--git-dir={bare}",
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    f"refs/heads/{pull.head_ref}",
                ],
                capture_output=True,
                text=True,
                check=False,
                env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"},
            )
            if proc.returncode == 0 and proc.stdout.strip():
                return proc.stdout.strip()
        return pull.head_sha

    def fail_next(self, status: int = 500, *, times: int = 1, message: str = "Server Error") -> None:
        self._add_fault(_Fault(status, times, {}, {"message": message}))

    def rate_limit_next(self, *, times: int = 1, retry_after: float = 1) -> None:
        """The next requests get 429 with `Retry-After` (GitHub's secondary rate limit)."""
        body = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}
        self._add_fault(_Fault(429, times, {"Retry-After": f"{retry_after:g}"}, body))

    def exhaust_rate_limit(self, *, times: int = 1, reset_in: float = 1) -> None:
        """The next requests get 403 with `x-ratelimit-remaining: 0` and a reset time (the primary limit)."""
        headers = {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": str(self.rate_limit),
            "x-ratelimit-reset": str(int(time.time() + reset_in + 0.999)),
            "x-ratelimit-resource": "core",
        }
        body = {"message": f"API rate limit exceeded for user ID 1. (But here's the good news: {DOCS})"}
        self._add_fault(_Fault(403, times, headers, body))

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_to(self, path_suffix: str, method: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.path.endswith(path_suffix) and (method is None or r.method == method)
            ]

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _dispatch(
        self, method: str, target: str, headers: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        url = urlsplit(target)
        query = parse_qs(url.query)
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests.append(Recorded(method, url.path, query, lowered, body))
            fault = self._faults[0] if self._faults else None
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.pop(0)
        if fault is not None:
            body_out = {**fault.body, "documentation_url": DOCS, "status": str(fault.status)}
            return fault.status, body_out, dict(fault.headers)
        if not url.path.startswith(self.prefix + "/"):
            return _error(404, "Not Found")
        path = url.path[len(self.prefix) :]
        authed = self._authenticated(lowered.get("authorization"))
        if authed is False:
            return _error(401, "Bad credentials")
        with self._lock:
            for route in self.routes:
                answer = route(method, path, query, body, authed, lowered)
                if answer is not None:
                    return answer[0], answer[1], {**self._rate_headers(), **answer[2]}
            status, payload, extra = self._route(method, path, query, body, authed)
        return status, payload, {**self._rate_headers(), **extra}

    def _authenticated(self, header: str | None) -> bool | None:
        if header is None:
            return None
        scheme, _, given = header.partition(" ")
        return scheme.lower() in ("bearer", "token") and secrets.compare_digest(given.strip(), self.token)

    def _rate_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(self.rate_limit - 1),
            "x-ratelimit-used": "1",
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-resource": "core",
        }

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, authed: bool | None
    ) -> tuple[int, Any, dict[str, str]]:
        if path == "/user" and method == "GET":
            if not authed:
                return _error(401, "Requires authentication")
            scopes = {} if self.scopes is None else {"X-OAuth-Scopes": self.scopes}
            return 200, {"login": self.login, "id": 1, "type": "User", "site_admin": False}, scopes
        if path == "/rate_limit" and method == "GET":
            return 200, self._rate_limit_body(), {}
        match = _REPO_PATH.fullmatch(path)
        repo = self._repos.get(f"{match['owner']}/{match['name']}".lower()) if match else None
        if match is None or repo is None or (repo.private and not authed):
            return _error(404, "Not Found")
        rest = match["rest"] or ""
        if rest == "" and method == "GET":
            return 200, self._repo_json(repo), {}
        if not authed and method != "GET":
            return _error(401, "Requires authentication")
        if rest == "/pulls" and method == "GET":
            return self._list_pulls(repo, query)
        if rest == "/pulls" and method == "POST":
            return self._create_pull(repo, body if isinstance(body, dict) else {})
        answer = self.checks.route(repo.full_name, method, rest, self._pulls[repo.full_name.lower()], query)
        if answer is not None:
            return answer
        pull_match = _PULL_PATH.fullmatch(rest)
        pull = self._pulls[repo.full_name.lower()].get(int(pull_match["number"])) if pull_match else None
        if pull_match is None or pull is None:
            return _error(404, "Not Found")
        if pull_match["merge"] and method == "PUT":
            return self._merge(pull, body if isinstance(body, dict) else {})
        if not pull_match["merge"] and method == "GET":
            return 200, self._pull_json(pull, full=True), {}
        return _error(404, "Not Found")

    def _rate_limit_body(self) -> dict[str, Any]:
        rate = {
            "limit": self.rate_limit,
            "remaining": self.rate_limit - 1,
            "reset": int(time.time()) + 3600,
            "used": 1,
        }
        return {"resources": {"core": {**rate, "resource": "core"}}, "rate": rate}

    def _repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        html = f"https://github.com/{repo.full_name}"
        return {
            "id": abs(hash(repo.full_name)) % 10**9,
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": {"login": repo.owner, "type": "User"},
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "html_url": html,
            "description": repo.description,
            "fork": False,
            "url": f"{self.api_url}/repos/{repo.full_name}",
            "clone_url": repo.clone_url or f"{html}.git",
            "ssh_url": f"git@github.com:{repo.full_name}.git",
            "default_branch": repo.default_branch,
            "archived": False,
            "allow_merge_commit": repo.allow_merge_commit,
            "allow_squash_merge": repo.allow_squash_merge,
            "allow_rebase_merge": repo.allow_rebase_merge,
        }

    def _pull_json(self, pull: FakePull, *, full: bool) -> dict[str, Any]:
        repo = pull.repo
        data: dict[str, Any] = {
            "url": f"{self.api_url}/repos/{repo.full_name}/pulls/{pull.number}",
            "id": pull.number * 1000,
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": {"login": self.login, "type": "User"},
            "body": pull.body,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
            "closed_at": pull.merged_at if pull.state == "closed" else None,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "draft": pull.draft,
            "html_url": f"https://github.com/{repo.full_name}/pull/{pull.number}",
            "head": {
                "label": f"{pull.head_owner}:{pull.head_ref}",
                "ref": pull.head_ref,
                "sha": self.head_of(pull),
                "user": {"login": pull.head_owner},
            },
            "base": {
                "label": f"{repo.owner}:{pull.base_ref}",
                "ref": pull.base_ref,
                "sha": pull.base_sha,
                "user": {"login": repo.owner},
            },
        }
        if full:
            data.update(
                merged=pull.merged,
                mergeable=pull.mergeable,
                mergeable_state=pull.mergeable_state,
                comments=0,
                commits=1,
            )
        return data

    def _list_pulls(self, repo: FakeRepo, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        state = query.get("state", ["open"])[0]
        head = query.get("head", [None])[0]
        base = query.get("base", [None])[0]
        per_page = min(int(query.get("per_page", ["30"])[0]), self.max_per_page)
        page = max(int(query.get("page", ["1"])[0]), 1)
        pulls = [
            p
            for p in sorted(self._pulls[repo.full_name.lower()].values(), key=lambda p: -p.number)
            if (state == "all" or p.state == state)
            and (head is None or f"{p.head_owner}:{p.head_ref}".lower() == head.lower())
            and (base is None or p.base_ref == base)
        ]
        last = max(1, -(-len(pulls) // per_page))
        chunk = pulls[(page - 1) * per_page : page * per_page]
        return 200, [self._pull_json(p, full=False) for p in chunk], self._links(repo, query, page, last)

    def _links(self, repo: FakeRepo, query: dict[str, list[str]], page: int, last: int) -> dict[str, str]:
        def link(number: int, rel: str) -> str:
            params = {k: v[0] for k, v in query.items() if k != "page"}
            url = f"{self.api_url}/repos/{repo.full_name}/pulls?{urlencode({**params, 'page': number})}"
            return f'<{url}>; rel="{rel}"'

        rels = []
        if page < last:
            rels += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            rels += [link(1, "first"), link(page - 1, "prev")]
        return {"Link": ", ".join(rels)} if rels else {}

    def _create_pull(self, repo: FakeRepo, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        missing = [f for f in ("title", "head", "base") if not body.get(f)]
        if missing:
            errors = [{"resource": "PullRequest", "field": f, "code": "missing_field"} for f in missing]
            return _error(422, "Validation Failed", errors=errors)
        head_owner, _, head_ref = str(body["head"]).rpartition(":")
        head_owner = head_owner or repo.owner
        if head_ref == body["base"] and head_owner == repo.owner:
            message = f"No commits between {body['base']} and {head_ref}"
            return _error(
                422,
                "Validation Failed",
                errors=[{"resource": "PullRequest", "code": "custom", "message": message}],
            )
        pulls = self._pulls[repo.full_name.lower()]
        for pull in pulls.values():
            if pull.state == "open" and (pull.head_owner, pull.head_ref) == (head_owner, head_ref):
                message = f"A pull request already exists for {head_owner}:{head_ref}."
                errors = [{"resource": "PullRequest", "code": "custom", "message": message}]
                return _error(422, "Validation Failed", errors=errors)
        number = max(pulls, default=0) + 1
        pull = FakePull(
            repo=repo,
            number=number,
            title=str(body["title"]),
            body=body.get("body"),
            head_ref=head_ref,
            base_ref=str(body["base"]),
            head_owner=head_owner,
            draft=bool(body.get("draft", False)),
            mergeable=None,
            mergeable_state="unknown",
        )
        pulls[number] = pull
        data = self._pull_json(pull, full=True)
        pull.mergeable, pull.mergeable_state = True, "clean"
        return 201, data, {"Location": data["url"]}

    def _merge(self, pull: FakePull, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        method = body.get("merge_method", "merge")
        allowed = {
            "merge": (pull.repo.allow_merge_commit, "Merge commits are not allowed on this repository."),
            "squash": (pull.repo.allow_squash_merge, "Squash merges are not allowed on this repository."),
            "rebase": (pull.repo.allow_rebase_merge, "Rebase merges are not allowed on this repository."),
        }
        if method not in allowed:
            errors = [{"resource": "PullRequest", "field": "merge_method", "code": "invalid"}]
            return _error(422, "Validation Failed", errors=errors)
        if not allowed[method][0]:
            return _error(405, allowed[method][1])
        if pull.state != "open" or pull.merged or pull.draft or not pull.mergeable:
            return _error(405, "Pull Request is not mergeable")
        if body.get("sha") and body["sha"] != self.head_of(pull):
            return _error(409, "Head branch was modified. Review and try the merge again.")
        pull.merged, pull.state, pull.merge_method = True, "closed", method
        pull.merged_at = pull.updated_at = _now()
        pull.merge_commit_sha = _sha()
        return (
            200,
            {"sha": pull.merge_commit_sha, "merged": True, "message": "Pull Request successfully merged"},
            {},
        )
