"""Where a webhook may be sent: pure decisions on a target URL and the addresses its host resolved to.
Resolving and connecting are done by the callers (webhooks/resolve.py, the deliverer)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from orchestrator.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443}
# Kinds an operator may open up with WEBHOOK_ALLOW_PRIVATE; link-local (cloud metadata), multicast,
# reserved and unspecified addresses stay closed unless the host is named in WEBHOOK_ALLOW_HOSTS.
PRIVATE_KINDS = frozenset({"loopback", "private"})

# RFC 1918, shared address space (RFC 6598), unique local (RFC 4193) and the old site-local IPv6 range
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fec0::/10")
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(Invalid, ValueError):
    """The target may not be sent to; the message says why without naming what answered there."""


@dataclass(frozen=True)
class Target:
    url: httpx.URL
    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class AllowedHost:
    host: str
    port: int | None  # None: every port


@dataclass(frozen=True)
class TargetPolicy:
    allow_private: bool = False
    allow_http: bool = False
    allow_hosts: tuple[AllowedHost, ...] = ()
    hosts_only: bool = False

    def names(self, target: Target) -> bool:
        return any(
            entry.host == target.host and entry.port in (None, target.port) for entry in self.allow_hosts
        )


def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    literal = literal_address(host)
    return literal.compressed if literal is not None else host


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def parse_allowed_host(entry: str) -> AllowedHost:
    """`host`, `host:port`, `1.2.3.4:port`, `[::1]:port` or a bare IPv6 address."""
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"expected [address]:port, got {entry!r}")
    elif entry.count(":") > 1:
        host, port = entry, ""
    else:
        host, _, port = entry.partition(":")
    if not host:
        raise ValueError(f"no host in {entry!r}")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"bad port in {entry!r}")
    return AllowedHost(_normal_host(host), int(port) if port else None)


def parse_target(url: str) -> Target:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise TargetRefused(f"not a URL: {exc}") from None
    if parsed.scheme not in DEFAULT_PORTS:
        raise TargetRefused("only http and https targets are supported")
    if not parsed.host:
        raise TargetRefused("the URL has no host")
    if parsed.userinfo:
        raise TargetRefused(
            "credentials in the URL are not accepted (deliveries are authenticated by their signature)"
        )
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    # the ASCII (punycode) form: the one resolved, sent as Host and SNI, and matched against the allow-list
    return Target(parsed, parsed.scheme, _normal_host(parsed.raw_host.decode("ascii")), port)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_kind(address: IPAddress) -> str | None:
    """None for a public address, else the kind of special address it is (IPv4 inside IPv6 unwrapped)."""
    address = _embedded_ipv4(address) or address
    if address.is_unspecified or address in _THIS_NETWORK:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if any(address.version == n.version and address in n for n in _PRIVATE):
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


def check_before_resolving(target: Target, policy: TargetPolicy) -> None:
    """With WEBHOOK_HOSTS_ONLY, a host the allow-list does not name is refused without a DNS lookup."""
    if policy.hosts_only and not policy.names(target):
        raise TargetRefused(
            f"{target.host}:{target.port} is not named in WEBHOOK_ALLOW_HOSTS (WEBHOOK_HOSTS_ONLY)"
        )


def check_target(target: Target, addresses: Iterable[IPAddress], policy: TargetPolicy) -> None:
    """Raises TargetRefused unless every address of the target may be sent to, and its scheme fits:
    https, or http for hosts named in the allow-list, private targets opened up, or WEBHOOK_ALLOW_HTTP."""
    found = list(addresses)
    if not found:
        raise TargetRefused(f"{target.host} has no address")
    if policy.names(target):
        return
    kinds = {address_kind(address) for address in found}
    closed = sorted(
        kind for kind in kinds if kind is not None and not (policy.allow_private and kind in PRIVATE_KINDS)
    )
    if closed:
        raise TargetRefused(
            f"{target.host} is or resolves to a {'/'.join(closed)} address; to allow it, name it in "
            "WEBHOOK_ALLOW_HOSTS (or set WEBHOOK_ALLOW_PRIVATE=true for private and loopback ones)"
        )
    if target.scheme == "http" and not policy.allow_http and None in kinds:
        raise TargetRefused("public targets must use https (or set WEBHOOK_ALLOW_HTTP=true)")
