"""The Python client's paths: an id or repository name never leaves its route once httpx resolves the URL."""

from __future__ import annotations

import httpx
import pytest

from orchestrator.client import endpoints
from orchestrator.client.errors import InvalidRequest

BASE = "http://127.0.0.1:3020"


def _sent_path(call: endpoints.Call[object]) -> str:
    with httpx.Client(base_url=BASE) as http:
        return http.build_request(call.method, call.path).url.path


@pytest.mark.parametrize(
    "build",
    [
        lambda: endpoints.github_ensure_remote("../../queue/clear", "/tmp/x"),
        lambda: endpoints.github_ensure_remote("owner/..", "/tmp/x"),
        lambda: endpoints.github_repo("./x"),
        lambda: endpoints.github_merge_pull("../../queue/clear/..", 1, "squash", None, None, None),
        lambda: endpoints.approve_task(".."),
        lambda: endpoints.reject_task(".", "no"),
        lambda: endpoints.delete_task(".."),
        lambda: endpoints.kill(".."),
        lambda: endpoints.queue_remove(".."),
        lambda: endpoints.delete_webhook(".."),
    ],
)
def test_dot_segments_are_refused_before_sending(build: object) -> None:
    with pytest.raises(InvalidRequest):
        build()  # type: ignore[operator]


def test_ordinary_names_stay_in_their_route() -> None:
    assert _sent_path(endpoints.github_ensure_remote("owner/repo.git", "/tmp/x")) == (
        "/api/github/ensure-remote/owner/repo.git"
    )
    assert _sent_path(endpoints.approve_task("a/../../queue/clear")).startswith("/api/tasks/")
    assert _sent_path(endpoints.approve_task("...")) == "/api/tasks/.../approve"
    assert _sent_path(endpoints.kill("..x")) == "/api/agents/..x/kill"
