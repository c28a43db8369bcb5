"""The guard's decisions, without a server: which Host headers, origins and callers it lets through."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.api.guard import (
    HostPolicy,
    bearer_matches,
    cross_site_refusal,
    dashboard_token_refusal,
    is_open,
    split_host,
)
from orchestrator.settings import Settings


def policy(**values: object) -> HostPolicy:
    return HostPolicy.from_settings(Settings(data_dir=Path("/nonexistent"), port=3020, **values))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:3020", ("127.0.0.1", 3020)),
        ("LocalHost", ("localhost", None)),
        ("[::1]:3020", ("[::1]", 3020)),
        ("[::1]", ("[::1]", None)),
        ("[::1]x", None),
        ("[::1", None),
        ("host:0", None),
        ("host:99999", None),
        ("host:abc", None),
        ("user@host", None),
        ("a,b", None),
        ("", None),
    ],
)
def test_split_host(value: str, expected: tuple[str, int | None] | None) -> None:
    assert split_host(value) == expected


def test_the_default_policy_answers_loopback_names_only() -> None:
    hosts = policy()
    for good in ("127.0.0.1:3020", "localhost:3020", "[::1]:3020", "localhost", "LOCALHOST:3020"):
        assert hosts.allows(good), good
    for bad in (
        "evil.example",
        "evil.example:3020",
        "localhost.evil.example:3020",
        "127.0.0.1:3021",
        "10.0.0.5:3020",  # an IP literal is only fine when bound to every address
        "",
        None,
    ):
        assert not hosts.allows(bad), bad


def test_a_wildcard_bind_answers_ip_literals_and_allowed_hosts_names() -> None:
    hosts = policy(host="0.0.0.0", allowed_hosts="orchestrator.svc,proxy.test:8443")
    assert hosts.allows("10.1.2.3:3020") and hosts.allows("[fd00::1]:80")
    assert hosts.allows("orchestrator.svc") and hosts.allows("orchestrator.svc:9999")
    assert hosts.allows("proxy.test:8443") and not hosts.allows("proxy.test:8444")
    assert not hosts.allows("evil.example:3020")
    assert policy(allowed_hosts="*").allows("anything.example")
    assert policy(host="orch.lan").allows("orch.lan:3020")


def test_cross_site_refusal() -> None:
    host = "127.0.0.1:3020"
    assert cross_site_refusal("GET", host, "http://evil.example", "cross-site") is None
    assert cross_site_refusal("POST", host, None, None) is None, "a client outside a browser"
    assert cross_site_refusal("POST", host, "http://127.0.0.1:3020", "same-origin") is None
    assert cross_site_refusal("POST", host, "https://127.0.0.1:3020", None) is None
    for origin, site in (
        ("http://evil.example", None),
        (None, "cross-site"),
        (None, "same-site"),
        ("null", None),
        ("http://localhost:3020", None),
        ("http://127.0.0.1:3021", None),
        ("javascript://127.0.0.1:3020", None),
    ):
        for method in ("POST", "PUT", "PATCH", "DELETE", "delete"):
            assert cross_site_refusal(method, host, origin, site), (method, origin, site)


def test_dashboard_token_refusal() -> None:
    hosts = policy(allowed_hosts="orch.test")
    own = ("127.0.0.1:3020", "same-origin", False, "127.0.0.1")
    assert dashboard_token_refusal(hosts, *own) is None
    assert dashboard_token_refusal(hosts, "localhost:3020", "same-origin", False, "::1") is None
    for host, site, forwarded, peer in (
        ("orch.test", "same-origin", False, "127.0.0.1"),
        ("localhost", "same-origin", False, "127.0.0.1"),  # not the service's own origin
        ("127.0.0.1:3020", None, False, "127.0.0.1"),
        ("127.0.0.1:3020", "cross-site", False, "127.0.0.1"),
        ("127.0.0.1:3020", "none", False, "127.0.0.1"),
        ("127.0.0.1:3020", "same-origin", True, "127.0.0.1"),
        ("127.0.0.1:3020", "same-origin", False, "192.0.2.7"),
        ("127.0.0.1:3020", "same-origin", False, None),
    ):
        assert dashboard_token_refusal(hosts, host, site, forwarded, peer), (host, site, forwarded, peer)


def test_bearer_and_open_paths() -> None:
    assert bearer_matches("Bearer s3cret", "s3cret") and bearer_matches("bearer  s3cret ", "s3cret")
    assert not bearer_matches("Bearer wrong", "s3cret") and not bearer_matches(None, "s3cret")
    assert not bearer_matches("s3cret", "s3cret") and not bearer_matches("Basic s3cret", "s3cret")
    assert is_open("/") and is_open("/api/health") and is_open("/static/app.js")
    for closed in ("/openapi.json", "/docs", "/redoc", "/api/agents", "/metrics", "/api/health/x", "/static"):
        assert not is_open(closed), closed
