"""Where a host name leads: its addresses, and whether each is on the public internet.

The proxy resolves a host once and connects to the addresses it checked, never to the name
again: a second lookup could answer differently (DNS rebinding). A non-public address (loopback,
private, link-local and so the cloud metadata service at 169.254.169.254, carrier-grade NAT,
multicast, reserved; an IPv4-mapped IPv6 address counts as its IPv4 one) is reached only when an
exact allow-list entry names the host (:mod:`.allowlist`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""``(host, port)`` → its addresses; raises ``OSError`` when the name does not resolve."""
MAX_ADDRESSES = 16


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a globally routed unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The system resolver's addresses for ``host`` (TCP), in its order, deduplicated."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    found: dict[IPAddress, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        # A scoped IPv6 address ("fe80::1%eth0") is link-local: never public, so drop the scope.
        found.setdefault(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]), None)
    if not found:
        raise OSError(f"{host} has no address")
    return list(found)[:MAX_ADDRESSES]
