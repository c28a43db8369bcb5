"""The egress policy's decisions (domain/egress.py): by name, then by resolved address."""

from __future__ import annotations

import ipaddress

import pytest

from orchestrator.domain.egress import (
    EgressPatternError,
    EgressPolicy,
    model_api,
    parse_allow,
    refusal_for_address,
)

ip = ipaddress.ip_address


def _policy(allow: str = "", model: str = "http://127.0.0.1:18080") -> EgressPolicy:
    return EgressPolicy.from_settings(model, allow)


def test_only_the_model_api_port_on_loopback_is_allowed_by_default() -> None:
    policy = _policy()
    assert policy.decide("127.0.0.1", 18080).allowed
    for host, port in [("127.0.0.1", 3020), ("127.0.0.1", 55432), ("localhost", 18080), ("::1", 18080)]:
        assert not policy.decide(host, port).allowed, (host, port)
    assert not policy.decide("169.254.169.254", 80).allowed
    assert not policy.decide("10.0.0.1", 443).allowed
    assert not policy.decide("example.com", 443).allowed


def test_patterns_hosts_ports_wildcards_and_addresses() -> None:
    policy = _policy("pypi.org, *.github.com:443,registry.npmjs.org:*, 127.0.0.1:9000, [::1]:9001")
    assert policy.decide("PyPI.org.", 443).allowed
    assert not policy.decide("pypi.org", 80).allowed, "no port means 443 only"
    assert policy.decide("api.github.com", 443).allowed
    assert not policy.decide("github.com", 443).allowed, "a wildcard is for subdomains"
    assert not policy.decide("evilgithub.com", 443).allowed
    assert policy.decide("registry.npmjs.org", 8443).allowed
    assert policy.decide("127.0.0.1", 9000).allowed
    assert policy.decide("[::1]", 9001).allowed
    assert not policy.decide("127.0.0.1", 9001).allowed


@pytest.mark.parametrize(
    "bad", ["example.com:0", "example.com:99999", "exa mple.com", "*.10.0.0.1", "[::1", "a/b", "*.", "x:y"]
)
def test_a_bad_pattern_is_an_error_naming_it(bad: str) -> None:
    with pytest.raises(EgressPatternError):
        parse_allow(f"ok.example.com,{bad}")


def test_model_api_url() -> None:
    assert model_api("https://api.anthropic.com").port == 443
    local = model_api("http://localhost:18080/")
    assert (local.host, local.port, local.on_loopback) == ("localhost", 18080, True)
    assert not model_api("https://api.anthropic.com").on_loopback
    for bad in ("ftp://x", "api.anthropic.com", "http://:80", "http://h:notaport"):
        with pytest.raises(EgressPatternError):
            model_api(bad)


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("100.64.0.1", "private"),
        ("168.63.129.16", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("0.0.0.0", "unicast"),
        ("224.0.0.1", "unicast"),
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
    ],
)
def test_addresses_a_name_may_not_lead_to(address: str, refused: str | None) -> None:
    reason = refusal_for_address(ip(address))
    assert (reason is None) if refused is None else (reason is not None and refused in reason)


def test_an_allowed_name_that_resolves_inside_is_refused_but_an_allowed_address_is_not() -> None:
    policy = _policy("files.example.com, 127.0.0.1:9000, localhost:9002")
    by_name = policy.decide("files.example.com", 443)
    kept, why = policy.check_addresses(by_name, [ip("169.254.169.254"), ip("10.1.2.3")])
    assert kept == [] and "AGENT_EGRESS_ALLOW" in why
    kept, _ = policy.check_addresses(by_name, [ip("10.1.2.3"), ip("93.184.216.34")])
    assert kept == [ip("93.184.216.34")], "only the public address is dialled"
    literal = policy.decide("127.0.0.1", 9000)
    assert policy.check_addresses(literal, [ip("127.0.0.1")])[0] == [ip("127.0.0.1")]
    local = policy.decide("localhost", 9002)
    assert policy.check_addresses(local, [ip("127.0.0.1")])[0] == [ip("127.0.0.1")]
