"""How the federation client moves bytes: aiohttp in production, any httpx transport in tests.

Production requests go straight through an aiohttp session: httpx's own pool was measured at
74 POSTs/s to 200 hosts (https://github.com/encode/httpx/issues/3215), and even httpx over an
aiohttp transport spent more CPU per POST in httpx's request building than in the network
(docs/performance.md). Tests plug in-process peers in as httpx transports (MockTransport,
ASGITransport), so both implement one small interface and the client above never knows which.

Both cap response bodies while reading (decoded size, so a compressed bomb is caught too).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import aiohttp
import httpx
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from fedcop.security.ssrf import AddressGuard

MAX_BODY_BYTES = 1_000_000
CONNECT_SECONDS = 5.0
READ_SECONDS = 10.0


class TransportError(Exception):
    """No usable response. `closed_connection`: a reused connection the peer had closed."""

    def __init__(self, reason: str, *, closed_connection: bool = False) -> None:
        self.reason = reason
        self.closed_connection = closed_connection
        super().__init__(reason)


class BodyTooLargeError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


async def _read_capped(chunks: AsyncIterator[bytes], declared: int | None) -> bytes:
    if declared is not None and declared > MAX_BODY_BYTES:
        raise BodyTooLargeError(f"body of {declared} bytes is over {MAX_BODY_BYTES}")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLargeError(f"body is over {MAX_BODY_BYTES} bytes")
        parts.append(chunk)
    return b"".join(parts)


class Transport(Protocol):
    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> RawResponse: ...

    async def aclose(self) -> None: ...


class _GuardedResolver(AbstractResolver):
    """aiohttp resolver that connects only to addresses the SSRF guard has checked, so a name
    cannot pass the check with one address and connect to another (DNS rebinding)."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in await self._guard.addresses(host, port)
        ]

    async def close(self) -> None:
        return None


# Connections per host. What limits requests per host is the delivery worker's window (2 up to
# `fedcop worker --per-host`, at most 100); this only bounds sockets, and must not be lower than
# the window, or a far-away host's backlog is capped here (8 connections at 150 ms: 53/s).
MAX_CONNECTIONS_PER_HOST = 100


@lru_cache(maxsize=4096)
def _parsed_url(url: str) -> yarl.URL:
    """aiohttp parses a str URL on every request (~15 µs); a fan-out posts to the same few
    thousand inboxes again and again."""
    return yarl.URL(url)


class AiohttpTransport:
    def __init__(
        self, guard: AddressGuard, *, user_agent: str, per_host: int = MAX_CONNECTIONS_PER_HOST
    ) -> None:
        self._guard = guard
        self._user_agent = user_agent
        self._per_host = per_host
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use: it must belong to the running loop
            connector = aiohttp.TCPConnector(
                resolver=_GuardedResolver(self._guard),
                limit=0,
                limit_per_host=self._per_host,
                ttl_dns_cache=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"user-agent": self._user_agent},
                timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_SECONDS, sock_read=READ_SECONDS),
                cookie_jar=aiohttp.DummyCookieJar(),  # federation never keeps cookies
                skip_auto_headers=("content-type",),
            )
        return self._session

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> RawResponse:
        try:
            async with self._get_session().request(
                method, _parsed_url(url), headers=headers, data=body, allow_redirects=False
            ) as response:
                declared = response.content_length
                content = (
                    b""  # most inbox answers (202, empty): no reader to set up
                    if declared == 0
                    else await _read_capped(response.content.iter_chunked(65536), declared)
                )
                headers_out = {k.lower(): v for k, v in response.headers.items()}
                return RawResponse(response.status, headers_out, content)
        except aiohttp.ServerDisconnectedError as exc:
            raise TransportError(f"connection closed: {exc}", closed_connection=True) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class HttpxTransport:
    """Any httpx transport (tests route requests to in-process apps and fakes this way)."""

    def __init__(self, transport: httpx.AsyncBaseTransport, *, user_agent: str) -> None:
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                connect=CONNECT_SECONDS, read=READ_SECONDS, write=READ_SECONDS, pool=READ_SECONDS
            ),
            follow_redirects=False,
            headers={"user-agent": user_agent},
        )

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> RawResponse:
        request = self._client.build_request(method, url, headers=headers, content=body)
        try:
            response = await self._client.send(request, stream=True)
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise TransportError(f"connection failed: {exc}", closed_connection=True) from exc
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        try:
            declared = response.headers.get("content-length", "")
            content = await _read_capped(
                response.aiter_bytes(), int(declared) if declared.isdigit() else None
            )
            headers_out = {k.lower(): v for k, v in response.headers.items()}
            return RawResponse(response.status_code, headers_out, content)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
