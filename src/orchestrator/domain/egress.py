"""Where an agent may open a connection: the model API and the AGENT_EGRESS_ALLOW patterns. Pure: no I/O.

A connection is decided twice. First by name (`EgressPolicy.rule_for`): the host and port the agent asked
for must match a rule. Then by address (`refusal_for_address`): a rule written as a name only admits
public addresses, so a name that resolves (or is rebound) to loopback, a private network, link-local or
a cloud metadata endpoint is refused. A rule that names an address itself (`127.0.0.1:8080`,
`localhost:8080`) and the model API (ANTHROPIC_BASE_URL, chosen by the operator) admit what they name.

Pattern syntax (comma-separated): `host`, `host:port`, `*.example.com[:port]` (any subdomain, not the
domain itself), `[v6]:port`, `host:*` (any port). A pattern without a port admits port 443 only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORT = 443
ANY_PORT = None
# cloud instance metadata and platform endpoints that are not link-local (those are refused as such)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("100.100.100.200", "168.63.129.16", "192.0.0.192", "fd00:ec2::254", "fd20:ce::254")
)
_LOOPBACK_NAMES = ("localhost", "localhost.")


class EgressPatternError(ValueError):
    """A pattern of AGENT_EGRESS_ALLOW (or the model API URL) that cannot be read."""


def _address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def normal_host(host: str) -> str:
    """Lower case, no brackets, no trailing dot; an address in its canonical spelling."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    found = _address(host)
    if found is not None:
        return str(found)
    return host[:-1] if host.endswith(".") and len(host) > 1 else host


def split_host_port(target: str, default_port: int | None) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, a bare host (the default port) or a bare IPv6 address."""
    target = target.strip()
    if target.startswith("["):
        host, sep, rest = target[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise EgressPatternError(f"bad bracketed address in {target!r}")
        return host, _port(rest[1:], target) if rest else default_port
    if target.count(":") > 1:  # a bare IPv6 address
        return target, default_port
    host, sep, port = target.partition(":")
    return host, _port(port, target) if sep else default_port


def _port(text: str, whole: str) -> int | None:
    if text == "*":
        return ANY_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise EgressPatternError(f"bad port {text!r} in {whole!r}")
    return int(text)


@dataclass(frozen=True)
class Rule:
    host: str  # normalised; for a wildcard the suffix without "*."
    port: int | None  # None: any port
    wildcard: bool = False
    trusted: bool = False  # the address it resolves to is not checked (model API, address literals)
    label: str = ""

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host


def parse_pattern(pattern: str) -> Rule:
    host, port = split_host_port(pattern, DEFAULT_PORT)
    host = normal_host(host)
    wildcard = host.startswith("*.")
    if wildcard:
        host = host[2:]
    if not host or "*" in host or "/" in host or any(c.isspace() for c in host):
        raise EgressPatternError(f"bad host in {pattern.strip()!r}")
    literal = _address(host) is not None
    if wildcard and literal:
        raise EgressPatternError(f"a wildcard cannot apply to an address: {pattern.strip()!r}")
    trusted = literal or host in _LOOPBACK_NAMES
    return Rule(host, port, wildcard=wildcard, trusted=trusted, label=pattern.strip())


def parse_allow(text: str) -> tuple[Rule, ...]:
    """AGENT_EGRESS_ALLOW: comma-separated patterns; blanks are ignored."""
    return tuple(parse_pattern(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class ModelApi:
    host: str
    port: int
    url: str

    @property
    def on_loopback(self) -> bool:
        """The CLI connects to it inside the agent's own network namespace, so a relay listens there."""
        found = _address(self.host)
        return self.host in _LOOPBACK_NAMES or (found is not None and found.is_loopback)


def model_api(url: str) -> ModelApi:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressPatternError(f"expected an http(s) URL, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise EgressPatternError(f"bad port in {url!r}") from exc
    return ModelApi(normal_host(parts.hostname), port, url.strip())


def refusal_for_address(address: IPAddress) -> str | None:
    """Why a rule written as a name must not lead to `address`; None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata)"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not a unicast address"
    if address.is_private or not address.is_global:
        return "a private address"
    return None


@dataclass(frozen=True)
class Decision:
    rule: Rule | None
    reason: str  # why refused, or which rule admits it

    @property
    def allowed(self) -> bool:
        return self.rule is not None


class EgressPolicy:
    def __init__(self, model: ModelApi, allow: tuple[Rule, ...] = ()) -> None:
        self.model = model
        model_rule = Rule(model.host, model.port, trusted=True, label=f"the model API {model.url}")
        self.rules = (model_rule, *allow)

    @classmethod
    def from_settings(cls, model_url: str, allow: str) -> EgressPolicy:
        return cls(model_api(model_url), parse_allow(allow))

    def decide(self, host: str, port: int) -> Decision:
        """By name: the first rule that matches `host:port`."""
        host = normal_host(host)
        if not host or not 0 < port < 65536:
            return Decision(None, "not a host and port")
        for rule in self.rules:
            if rule.matches(host, port):
                return Decision(rule, f"allowed by {rule.label}")
        return Decision(None, "not the model API and not in AGENT_EGRESS_ALLOW")

    def check_addresses(self, decision: Decision, addresses: list[IPAddress]) -> tuple[list[IPAddress], str]:
        """The resolved addresses an allowed name may be connected to, and why the others were refused."""
        if decision.rule is None:
            return [], decision.reason
        if decision.rule.trusted:
            return addresses, ""
        kept, refused = [], ""
        for address in addresses:
            reason = refusal_for_address(address)
            if reason is None:
                kept.append(address)
            else:
                refused = f"it resolves to {reason}, which a name in AGENT_EGRESS_ALLOW cannot reach"
        return kept, refused or "it does not resolve"
