"""The GitHub router served by uvicorn on loopback, talking to the fake GitHub, with real git remotes."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from orchestrator.api import errors
from orchestrator.api.deps import Authorized
from orchestrator.api.github import router
from orchestrator.forge import GitHubClient
from orchestrator.forge.mirror import Mirrors
from orchestrator.forge.publisher import Publisher
from orchestrator.settings import Settings
from tests.support.fake_github import FakeGitHub, FakeRepo
from tests.support.git_http import GitHttpServer

OWNER = "acme"
API_TOKEN = "orchestrator-api-token-for-tests"
BRANCH = "task/7-add-widget"


@dataclass
class Api:
    client: httpx.Client
    fake: FakeGitHub
    workspaces: Path
    answers: list[httpx.Response] = field(default_factory=list)
    token_answers: set[int] = field(default_factory=set)


class ThreadedServer:
    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", ws="none", http="h11", loop="asyncio", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="github-api", daemon=True
        )

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def build_app(github: GitHubClient, settings: Settings) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.include_router(router, dependencies=[Authorized])
    app.state.github = github
    publisher = Publisher(
        Mirrors(settings.mirrors_dir), settings.github_git_url, settings.github_owner, settings.github_token
    )
    app.state.services = SimpleNamespace(settings=settings, publisher=publisher)
    return app


ApiFactory = Callable[..., Api]


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def host(tmp_path: Path, fake: FakeGitHub) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path / "git-host", fake.token) as server:
        yield server


@pytest.fixture
def make_api(fake: FakeGitHub, host: GitHttpServer, tmp_path: Path) -> Iterator[ApiFactory]:
    apis: list[Api] = []
    stack: list[tuple[ThreadedServer, GitHubClient]] = []

    def make(*, api_token: str | None = None, github_token: str | None = None) -> Api:
        token = fake.token if github_token is None else github_token
        workspaces = tmp_path / "workspaces"
        workspaces.mkdir(exist_ok=True)
        settings = Settings(
            data_dir=tmp_path / "data",
            workspaces_dir=workspaces,
            github_token=token,
            github_owner=OWNER,
            github_api_url=fake.api_url,
            github_git_url=host.url,
            api_token=api_token,
        )
        github = GitHubClient(fake.api_url, token, OWNER, max_rate_limit_wait=2)
        server = ThreadedServer(build_app(github, settings)).__enter__()
        stack.append((server, github))
        headers = {"Authorization": f"Bearer {api_token}"} if api_token else {}
        api = Api(
            httpx.Client(base_url=f"http://127.0.0.1:{server.port}", headers=headers, timeout=60),
            fake,
            workspaces,
        )

        def keep(response: httpx.Response) -> None:
            response.read()
            api.answers.append(response)

        api.client.event_hooks["response"] = [keep]
        apis.append(api)
        return api

    yield make
    for api in apis:
        api.client.close()
    for server, github in stack:
        server.__exit__()
        github.close()
    for api in apis:
        for i, answer in enumerate(api.answers):
            if i in api.token_answers:
                continue
            text = answer.text + "".join(f"{k}: {v}\n" for k, v in answer.headers.items())
            assert fake.token not in text, f"the GitHub token leaked in answer {i}: {answer.request.url}"


@pytest.fixture
def api(make_api: ApiFactory) -> Api:
    return make_api()


@pytest.fixture
def repo(fake: FakeGitHub) -> FakeRepo:
    return fake.add_repo(OWNER, "widgets", default_branch="develop")


def git(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="T", GIT_AUTHOR_EMAIL="t@example.com")
    env.update(GIT_COMMITTER_NAME="T", GIT_COMMITTER_EMAIL="t@example.com")
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def bare(host: GitHttpServer, repo: FakeRepo) -> Path:
    path = host.add_repo(OWNER, "widgets")
    git("symbolic-ref", "HEAD", "refs/heads/develop", cwd=path)
    return path


@pytest.fixture
def workspace(api: Api, bare: Path) -> Path:
    path = api.workspaces / "task-7"
    git("clone", "-q", str(bare), str(path), cwd=api.workspaces)
    git("checkout", "-q", "-b", BRANCH, cwd=path)
    (path / "widget.py").write_text("WIDGET = 1\n")
    git("add", "widget.py", cwd=path)
    git("commit", "-q", "-m", "Add a widget", cwd=path)
    return path


def test_status(api: Api) -> None:
    answer = api.client.get("/api/github/status")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["configured"], body["valid"], body["login"]) == (True, True, "octo-bot")
    assert body["rate_limit"]["remaining"] > 0


@pytest.mark.parametrize("path", ["widgets", "acme%2Fwidgets", "acme/widgets"])
def test_repository_and_default_branch_by_any_name_form(api: Api, repo: FakeRepo, path: str) -> None:
    info = api.client.get(f"/api/github/repo/{path}")
    assert info.status_code == 200
    assert info.json()["full_name"] == "acme/widgets"
    branch = api.client.get(f"/api/github/repo/{path}/default-branch")
    assert branch.json() == {"repo": "acme/widgets", "default_branch": "develop"}


def test_unknown_repository_is_404(api: Api) -> None:
    answer = api.client.get("/api/github/repo/nothing")
    assert answer.status_code == 404
    assert "acme/nothing" in answer.json()["detail"]


@pytest.mark.parametrize("path", ["..%2Fx", "-x", "acme%2F..", "a%2Fb%2Fc", "%2Fabs"])
def test_bad_repository_names_are_422_and_reach_no_github(api: Api, path: str) -> None:
    answer = api.client.get(f"/api/github/repo/{path}")
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("repo: ")
    assert api.fake.requests == []


def test_a_wrong_github_token_is_401(make_api: ApiFactory, repo: FakeRepo) -> None:
    api = make_api(github_token="ghp_WrongToken0123456789abcdefABCDEF01")
    answer = api.client.get("/api/github/repo/widgets")
    assert answer.status_code == 401
    assert "Bad credentials" in answer.json()["detail"]
    assert "ghp_WrongToken" not in answer.text


def test_the_api_token_guards_the_router(make_api: ApiFactory, repo: FakeRepo) -> None:
    api = make_api(api_token=API_TOKEN)
    assert api.client.get("/api/github/repo/widgets").status_code == 200
    anonymous = api.client.get("/api/github/repo/widgets", headers={"Authorization": ""})
    assert anonymous.status_code == 401


def test_clone_url_is_plain_by_default(api: Api, repo: FakeRepo) -> None:
    answer = api.client.get("/api/github/clone-url/widgets")
    assert answer.json() == {
        "repo": "acme/widgets",
        "url": "https://github.com/acme/widgets.git",
        "authenticated": False,
    }


@pytest.mark.parametrize("api_token", [None, API_TOKEN])
def test_the_token_bearing_clone_url_is_gone(
    make_api: ApiFactory, repo: FakeRepo, api_token: str | None
) -> None:
    api = make_api(api_token=api_token)
    answer = api.client.get("/api/github/clone-url/widgets", params={"authenticated": "true"})
    assert answer.status_code == 410
    assert "no longer given" in answer.json()["detail"]


def test_push_then_pr_round_trip(api: Api, bare: Path, workspace: Path, host: GitHttpServer) -> None:
    git("remote", "set-url", "origin", "http://127.0.0.1:9/elsewhere.git", cwd=workspace)
    pushed = api.client.post("/api/github/push", json={"repo": "widgets", "branch": BRANCH, "path": "task-7"})
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()["sha"] == git("rev-parse", f"refs/heads/{BRANCH}", cwd=bare)
    assert pushed.json()["remote_url"] == f"{host.url}/acme/widgets.git"
    assert api.fake.token not in (workspace / ".git" / "config").read_text()
    assert all(s.authorization == host.expected_authorization for s in host.seen if s.method == "POST")

    pr = {"repo": "widgets", "head": BRANCH, "title": "Add a widget", "body": "Closes #7"}
    created = api.client.post("/api/github/pr", json=pr)
    assert created.status_code == 201
    assert created.json()["created"] is True
    assert created.json()["base"]["ref"] == "develop"
    number = created.json()["number"]
    again = api.client.post("/api/github/pr", json=pr)
    assert again.status_code == 200
    assert (again.json()["created"], again.json()["number"]) == (False, number)

    got = api.client.get(f"/api/github/pr/acme%2Fwidgets/{number}")
    assert got.json()["head"]["ref"] == BRANCH
    listed = api.client.get("/api/github/prs/widgets", params={"head": BRANCH})
    assert [p["number"] for p in listed.json()] == [number]

    merged = api.client.post(f"/api/github/pr/widgets/{number}/merge", json={"merge_method": "squash"})
    assert merged.status_code == 200
    assert merged.json()["merged"] is True
    twice = api.client.post(f"/api/github/pr/widgets/{number}/merge")
    assert twice.status_code == 409
    assert "already merged" in twice.json()["detail"]
    closed = api.client.get("/api/github/prs/acme/widgets", params={"state": "closed"})
    assert [p["merged"] for p in closed.json()] == [True]


@pytest.mark.parametrize("path", ["../elsewhere", "/etc", ".", "task-7/../../github", "missing"])
def test_push_refuses_paths_outside_the_workspaces(api: Api, workspace: Path, path: str) -> None:
    answer = api.client.post("/api/github/push", json={"repo": "widgets", "branch": BRANCH, "path": path})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("path: ")


@pytest.mark.parametrize("branch", ["-f", "--force", "../x", "a..b"])
def test_push_refuses_bad_branches(api: Api, workspace: Path, branch: str) -> None:
    answer = api.client.post("/api/github/push", json={"repo": "widgets", "branch": branch, "path": "task-7"})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("branch: ")


def test_a_failing_push_is_redacted(make_api: ApiFactory, bare: Path, tmp_path: Path) -> None:
    api = make_api(github_token="ghp_WrongToken0123456789abcdefABCDEF01")
    path = api.workspaces / "task-7"
    git("clone", "-q", str(bare), str(path), cwd=api.workspaces)
    git("checkout", "-q", "-b", BRANCH, cwd=path)
    git("commit", "-q", "--allow-empty", "-m", "empty", cwd=path)
    answer = api.client.post("/api/github/push", json={"repo": "widgets", "branch": BRANCH, "path": "task-7"})
    assert answer.status_code == 401
    assert "ghp_WrongToken" not in answer.text


def test_not_mergeable_is_409_with_the_reason(api: Api, fake: FakeGitHub, repo: FakeRepo) -> None:
    pull = fake.add_pull(repo, "task/8-conflict", mergeable=False, mergeable_state="dirty")
    answer = api.client.post(f"/api/github/pr/widgets/{pull.number}/merge", json={"merge_method": "rebase"})
    assert answer.status_code == 409
    assert "merge conflicts" in answer.json()["detail"]


def test_a_bad_merge_method_is_422(api: Api, fake: FakeGitHub, repo: FakeRepo) -> None:
    pull = fake.add_pull(repo, "task/9")
    answer = api.client.post(f"/api/github/pr/widgets/{pull.number}/merge", json={"merge_method": "octopus"})
    assert answer.status_code == 422
    assert fake.requests_to("/merge") == []


def test_an_unknown_pr_is_404(api: Api, repo: FakeRepo) -> None:
    assert api.client.get("/api/github/pr/widgets/12").status_code == 404


def test_rate_limits_beyond_the_bound_are_503_with_retry_after(
    api: Api, fake: FakeGitHub, repo: FakeRepo
) -> None:
    fake.exhaust_rate_limit(reset_in=600)
    answer = api.client.get("/api/github/repo/widgets")
    assert answer.status_code == 503
    assert 590 <= int(answer.headers["retry-after"]) <= 602
    assert "retry_at" in answer.json()
    assert "rate limit" in answer.json()["detail"]


def test_github_server_errors_are_503(api: Api, fake: FakeGitHub, repo: FakeRepo) -> None:
    fake.fail_next(500, message=f"boom {fake.token}")
    answer = api.client.get("/api/github/prs/widgets")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert "[REDACTED]" in answer.json()["detail"]


def test_ensure_remote_is_gone_and_leaves_the_workspace_alone(api: Api, workspace: Path) -> None:
    before = (workspace / ".git" / "config").read_text()
    answer = api.client.post("/api/github/ensure-remote/widgets", json={"path": "task-7"})
    assert answer.status_code == 410
    assert "never uses a workspace's remotes" in answer.json()["detail"]
    assert (workspace / ".git" / "config").read_text() == before
