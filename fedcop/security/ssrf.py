"""The guard that keeps fedcop's outbound requests off internal networks (SSRF).

Every host a remote document names is resolved and refused if any of its addresses is
loopback, private, link-local, multicast, reserved or otherwise not globally routable — unless
the operator allows private addresses for a test network. The same resolution is what the
connection uses, so a host cannot pass the check with one address and connect to another
(DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Awaitable[list[str]]]
_CACHE_SECONDS = 60.0


class BlockedAddressError(Exception):
    """The URL's host is, or resolves to, an address fedcop must not contact."""


# IPv6 prefixes that carry an IPv4 address and reach it through a translator or tunnel, and
# which Python's `is_global` judges by the prefix alone: NAT64's well-known prefix (RFC 6052)
# and its local-use prefix (RFC 8215); and ::/8, reserved by the IETF, which holds the
# deprecated IPv4-compatible (RFC 4291) and IPv4-translated (RFC 2765) forms besides the
# IPv4-mapped one (::ffff:0:0/96, checked as the IPv4 address it maps).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_RESERVED_ZERO = ipaddress.IPv6Network("::/8")


def is_forbidden_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_forbidden_address(address.ipv4_mapped)
        if address in _LOCAL_NAT64:
            return True
        embedded = _embedded_ipv4(address)
        if embedded is not None and is_forbidden_address(embedded):
            return True  # 64:ff9b::7f00:1 is 127.0.0.1 behind a NAT64 gateway
        if address in _RESERVED_ZERO and address not in _NAT64:  # 64:ff9b:: is in ::/8 too
            return True
    return not address.is_global or address.is_multicast


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address.sixtofour is not None:  # 2002::/16
        return address.sixtofour
    if address.teredo is not None:  # 2001::/32: the client's address
        return address.teredo[1]
    return None


# Every request checks its host; parsing it (a ValueError for every name) cost ~3 µs a POST.
@lru_cache(maxsize=4096)
def parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass
class AddressGuard:
    allow_private: bool = False
    resolve: Resolve = system_resolve
    _cache: dict[tuple[str, int], tuple[float, list[str]]] = field(default_factory=dict)

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for host:port, all of them checked."""
        literal = parse_ip(host)
        if literal is not None:
            self._check(host, [literal])
            return [str(literal)]
        key = (host.lower(), port)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            found = await self.resolve(host, port)
        except (OSError, UnicodeError) as exc:
            # UnicodeError: a name IDNA cannot encode (an empty or 64+ character label).
            raise BlockedAddressError(f"{host[:300]} does not resolve: {exc}") from exc
        self._check(host, [ip for ip in map(parse_ip, found) if ip is not None])
        self._cache[key] = (time.monotonic() + _CACHE_SECONDS, found)
        return found

    def _check(self, host: str, addresses: list[IPAddress]) -> None:
        if not addresses:
            raise BlockedAddressError(f"{host} has no usable address")
        if self.allow_private:
            return
        for address in addresses:
            if is_forbidden_address(address):
                raise BlockedAddressError(
                    f"{host} resolves to {address}, which is not a public address "
                    "(set FEDCOP_ALLOW_PRIVATE_ADDRESSES for test networks)"
                )
