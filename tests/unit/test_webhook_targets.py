"""The webhook target policy and the signature: pure decisions, no I/O."""

from __future__ import annotations

import ipaddress

import pytest

from orchestrator.webhooks.signature import sign, verify
from orchestrator.webhooks.targets import (
    AllowedHost,
    TargetPolicy,
    TargetRefused,
    address_kind,
    check_before_resolving,
    check_target,
    parse_allowed_host,
    parse_target,
)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.31.0.1", "private"),
        ("192.168.0.1", "private"),
        ("100.64.0.1", "private"),
        ("fd12::1", "private"),
        ("fec0::1", "private"),
        ("169.254.169.254", "link-local"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:a9fe:a9fe::", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::7f00:1", "reserved"),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


def _check(url: str, addresses: list[str], policy: TargetPolicy | None = None) -> None:
    check_target(parse_target(url), [ipaddress.ip_address(a) for a in addresses], policy or TargetPolicy())


def test_public_https_passes_and_public_http_needs_a_setting() -> None:
    _check("https://hooks.example.com/x", ["93.184.216.34"])
    with pytest.raises(TargetRefused, match="https"):
        _check("http://hooks.example.com/x", ["93.184.216.34"])
    _check("http://hooks.example.com/x", ["93.184.216.34"], TargetPolicy(allow_http=True))


def test_one_internal_address_among_public_ones_refuses_the_target() -> None:
    with pytest.raises(TargetRefused, match="link-local"):
        _check("https://rebind.example.com/", ["93.184.216.34", "169.254.169.254"])
    with pytest.raises(TargetRefused, match="has no address"):
        _check("https://nothing.example.com/", [])


def test_allow_private_opens_private_and_loopback_only() -> None:
    policy = TargetPolicy(allow_private=True)
    _check("http://10.0.0.5:8080/", ["10.0.0.5"], policy)
    _check("http://localhost:8080/", ["127.0.0.1", "::1"], policy)
    with pytest.raises(TargetRefused, match="link-local"):
        _check("http://169.254.169.254/", ["169.254.169.254"], policy)
    with pytest.raises(TargetRefused, match="https"):
        _check("http://mixed.example.com/", ["10.0.0.5", "93.184.216.34"], policy)


def test_allowed_hosts_match_host_and_port_as_written() -> None:
    policy = TargetPolicy(
        allow_hosts=(parse_allowed_host("hooks.internal:8443"), parse_allowed_host("[::1]"))
    )
    _check("http://hooks.internal:8443/x", ["10.0.0.5"], policy)
    _check("http://HOOKS.internal.:8443/x", ["10.0.0.5"], policy)
    _check("http://[::1]:1234/x", ["::1"], policy)
    for url, address in [
        ("http://hooks.internal:8444/x", "10.0.0.5"),
        ("http://hooks.internal/x", "10.0.0.5"),
        ("http://other.internal:8443/x", "10.0.0.5"),
        ("http://127.0.0.1:1234/x", "127.0.0.1"),
    ]:
        with pytest.raises(TargetRefused):
            _check(url, [address], policy)


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("127.0.0.1", AllowedHost("127.0.0.1", None)),
        ("127.0.0.1:8080", AllowedHost("127.0.0.1", 8080)),
        ("Hooks.Internal.", AllowedHost("hooks.internal", None)),
        ("[::1]:9000", AllowedHost("::1", 9000)),
        ("::1", AllowedHost("::1", None)),
        ("[0:0::1]", AllowedHost("::1", None)),
    ],
)
def test_allowed_host_entries(entry: str, parsed: AllowedHost) -> None:
    assert parse_allowed_host(entry) == parsed


@pytest.mark.parametrize("entry", ["", ":80", "host:0", "host:99999", "host:x", "[::1]x"])
def test_bad_allowed_host_entries(entry: str) -> None:
    with pytest.raises(ValueError, match=r"host|port|expected"):
        parse_allowed_host(entry)


def test_only_http_and_https_with_a_host() -> None:
    for url in ("ftp://x/", "file:///etc/passwd", "gopher://x/", "https://user:token@hooks.example.com/"):
        with pytest.raises(TargetRefused):
            parse_target(url)


def test_signature_covers_timestamp_and_body() -> None:
    body = b'{"delivery_id":1,"type":"task.completed"}'
    header = sign("s3cret-value", body, 1_800_000_000)
    assert header.startswith("t=1800000000,v1=")
    assert verify("s3cret-value", body, header, now=1_800_000_100)
    assert not verify("s3cret-value", body, header, now=1_800_000_301)
    assert not verify("s3cret-value", body, header, now=1_799_999_699)
    assert not verify("s3cret-value", body + b" ", header, now=1_800_000_000)
    assert not verify("other-secret", body, header, now=1_800_000_000)
    assert not verify("s3cret-value", body, header.replace("t=1800000000", "t=1800000001"), 1_800_000_000)
    assert not verify("s3cret-value", body, "v1=" + header.partition("v1=")[2], now=1_800_000_000)


def test_international_names_are_checked_and_matched_in_their_ascii_form() -> None:
    assert parse_target("https://bücher.example/x").host == "xn--bcher-kva.example"
    policy = TargetPolicy(allow_hosts=(parse_allowed_host("xn--bcher-kva.example"),))
    _check("http://bücher.example/x", ["10.0.0.5"], policy)


def test_hosts_only_refuses_unnamed_hosts_before_any_lookup() -> None:
    policy = TargetPolicy(allow_hosts=(parse_allowed_host("hooks.internal"),), hosts_only=True)
    check_before_resolving(parse_target("https://hooks.internal/x"), policy)
    with pytest.raises(TargetRefused, match="not named"):
        check_before_resolving(parse_target("https://hooks.example.com/x"), policy)
    check_before_resolving(parse_target("https://hooks.example.com/x"), TargetPolicy())
