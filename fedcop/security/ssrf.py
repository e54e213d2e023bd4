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


def is_forbidden_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


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
