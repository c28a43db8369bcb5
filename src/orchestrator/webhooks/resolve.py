"""The addresses a webhook target's host resolves to, looked up once per check and checked against the
policy. A literal address is taken as it is, without asking any resolver."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from orchestrator.webhooks.targets import (
    IPAddress,
    Target,
    TargetPolicy,
    TargetRefused,
    check_before_resolving,
    check_target,
    literal_address,
    parse_target,
)

RESOLVE_TIMEOUT_SECONDS = 5.0


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in found:
            found.append(address)
    return found


def resolve(target: Target) -> list[IPAddress]:
    literal = literal_address(target.host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetRefused(f"{target.host} does not resolve") from None
    return _addresses(infos)


async def resolve_async(target: Target) -> list[IPAddress]:
    literal = literal_address(target.host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
        )
    except (OSError, UnicodeError, TimeoutError):
        raise TargetRefused(f"{target.host} does not resolve") from None
    return _addresses(infos)


def vet(url: str, policy: TargetPolicy) -> tuple[Target, list[IPAddress]]:
    """The target and its checked addresses, or TargetRefused; the one lookup is the one connected to."""
    target = parse_target(url)
    check_before_resolving(target, policy)
    addresses = resolve(target)
    check_target(target, addresses, policy)
    return target, addresses


async def vet_async(url: str, policy: TargetPolicy) -> tuple[Target, list[IPAddress]]:
    target = parse_target(url)
    check_before_resolving(target, policy)
    addresses = await resolve_async(target)
    check_target(target, addresses, policy)
    return target, addresses
