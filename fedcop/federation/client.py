"""The one HTTP client through which all of fedcop's federation traffic goes.

Signed GETs and POSTs, with the limits a server exposed to the whole fediverse needs: timeouts,
a body cap applied while streaming, at most three redirects with every hop checked by the SSRF
guard, http(s) only, and the rule that a fetched document's `id` is the URL it came from.

The transport is aiohttp's, behind httpx's interface (`httpx-aiohttp`): httpx's own pool was
measured at 74 POSTs/s to 200 hosts (https://github.com/encode/httpx/issues/3215), far short of
what fan-out needs; see docs/performance.md for this client's figures.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import httpx
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from httpx_aiohttp import AiohttpTransport

from fedcop.security.httpsig import PrivateKey, sign_request, sign_request_rfc9421
from fedcop.security.ssrf import AddressGuard, BlockedAddressError

# Mastodon's own Accept for AS2 fetches; some servers only answer the profile form.
AS2_ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
AS2_POST_CONTENT_TYPE = "application/activity+json"
MAX_BODY_BYTES = 1_000_000
MAX_REDIRECTS = 3
WHOLE_REQUEST_SECONDS = 30.0
TIMEOUTS = httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=10.0)
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Mastodon 4.7 retries with RFC 9421 after these answers to a cavage-signed request
# ("double knocking", https://swicg.github.io/activitypub-http-signature/#how-to-upgrade-supported-versions).
_DOUBLE_KNOCK_STATUSES = frozenset({400, 401})


class FetchError(Exception):
    """A remote request failed; `status` is the HTTP status when there was a response."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        super().__init__(f"{url}: {reason}")


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signs a request: a local actor's key id and its loaded private key."""

    key_id: str
    private_key: PrivateKey


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int
    retry_after: str | None = None


@dataclass(frozen=True, slots=True)
class FetchedBody:
    url: str  # the final URL, after redirects
    status: int
    content_type: str
    body: bytes


class _GuardedResolver(AbstractResolver):
    """aiohttp resolver that connects only to addresses the guard has checked."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self._guard.addresses(host, port)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def aiohttp_transport(guard: AddressGuard, *, per_host: int = 8) -> httpx.AsyncBaseTransport:
    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            resolver=_GuardedResolver(guard), limit=0, limit_per_host=per_host, ttl_dns_cache=60
        )
        return aiohttp.ClientSession(connector=connector, auto_decompress=False)

    return AiohttpTransport(client=session)


class FederationClient:
    def __init__(
        self,
        *,
        user_agent: str,
        guard: AddressGuard,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.guard = guard
        self._http = httpx.AsyncClient(
            transport=transport or aiohttp_transport(guard),
            timeout=TIMEOUTS,
            follow_redirects=False,
            headers={"user-agent": user_agent},
        )
        self._rfc9421_hosts: set[str] = set()
        self._signing_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fedcop-sign")

    async def aclose(self) -> None:
        await self._http.aclose()
        self._signing_pool.shutdown(wait=False)

    async def _sign(self, sign: Callable[..., dict[str, str]], *args: Any) -> dict[str, str]:
        # RSA signing is ~45% of a delivery's CPU and `cryptography` releases the GIL while it
        # signs, so signing on a small pool overlaps it with the event loop's own work
        # (measured: fan-out 0.46 -> 0.55-0.79 of the raw signing rate; docs/performance.md).
        return await asyncio.get_running_loop().run_in_executor(
            self._signing_pool, functools.partial(sign, *args)
        )

    async def fetch_json(self, url: str, signer: Signer, *, accept: str = AS2_ACCEPT) -> Any:
        """GET a JSON document (signed), following at most three redirects."""
        fetched = await self.get(url, signer, accept=accept)
        if fetched.status != 200:
            raise FetchError(fetched.url, f"answered {fetched.status}", fetched.status)
        return _parse_json(fetched)

    async def fetch_document(self, url: str, signer: Signer) -> dict[str, Any]:
        """GET an ActivityStreams object whose `id` is where it came from.

        A document may claim any id; trusting that is how CVE-2024-23832 impersonated actors.
        If the id differs from the final URL, the id itself is fetched once and must match.
        """
        final_url, document = await self._fetch_object(url, signer)
        claimed = document.get("id")
        if claimed == final_url:
            return document
        if not isinstance(claimed, str):
            raise FetchError(url, "the document has no id")
        final_url, document = await self._fetch_object(claimed, signer)
        if final_url != claimed or document.get("id") != claimed:
            raise FetchError(url, f"the document's id {claimed!r} does not match where it is")
        return document

    async def _fetch_object(self, url: str, signer: Signer) -> tuple[str, dict[str, Any]]:
        fetched = await self.get(url, signer)
        if fetched.status != 200:
            raise FetchError(fetched.url, f"answered {fetched.status}", fetched.status)
        document = _parse_json(fetched)
        if not isinstance(document, dict):
            raise FetchError(fetched.url, "not a JSON object")
        return fetched.url, document

    async def get(self, url: str, signer: Signer, *, accept: str = AS2_ACCEPT) -> FetchedBody:
        try:
            async with asyncio.timeout(WHOLE_REQUEST_SECONDS):
                return await self._get_following_redirects(url, signer, accept)
        except TimeoutError as exc:
            raise FetchError(url, f"no answer within {WHOLE_REQUEST_SECONDS:.0f}s") from exc

    async def _get_following_redirects(self, url: str, signer: Signer, accept: str) -> FetchedBody:
        for _ in range(MAX_REDIRECTS + 1):
            await self._check_url(url)
            headers = {"accept": accept}
            headers.update(
                await self._sign(
                    sign_request, "GET", url, headers, None, signer.key_id, signer.private_key
                )
            )
            status, response_headers, body = await self._send("GET", url, headers, None)
            location = response_headers.get("location")
            if status in _REDIRECT_STATUSES and location:
                url = urljoin(url, location)
                continue
            return FetchedBody(url, status, response_headers.get("content-type", ""), body)
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")

    async def post(self, url: str, body: bytes, signer: Signer) -> PostResult:
        """POST an activity (signed). Retries once with RFC 9421 if refused (double knocking)."""
        try:
            async with asyncio.timeout(WHOLE_REQUEST_SECONDS):
                await self._check_url(url)
                host = urlsplit(url).netloc
                if host not in self._rfc9421_hosts:
                    result = await self._post_signed(url, body, signer, rfc9421=False)
                    if result.status not in _DOUBLE_KNOCK_STATUSES:
                        return result
                result = await self._post_signed(url, body, signer, rfc9421=True)
                if 200 <= result.status < 300:
                    self._rfc9421_hosts.add(host)
                return result
        except TimeoutError as exc:
            raise FetchError(url, f"no answer within {WHOLE_REQUEST_SECONDS:.0f}s") from exc

    async def _post_signed(
        self, url: str, body: bytes, signer: Signer, *, rfc9421: bool
    ) -> PostResult:
        headers = {"content-type": AS2_POST_CONTENT_TYPE}
        if rfc9421:
            headers.update(
                await self._sign(
                    sign_request_rfc9421, "POST", url, body, signer.key_id, signer.private_key
                )
            )
        else:
            headers.update(
                await self._sign(
                    sign_request, "POST", url, headers, body, signer.key_id, signer.private_key
                )
            )
        status, response_headers, _ = await self._send("POST", url, headers, body)
        return PostResult(status, response_headers.get("retry-after"))

    async def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(url, "only http and https URLs are fetched")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            await self.guard.addresses(parts.hostname, port)
        except BlockedAddressError as exc:
            raise FetchError(url, str(exc)) from exc

    async def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, httpx.Headers, bytes]:
        # A keep-alive connection the peer closed while idle fails before any response; that
        # one failure is retried, nothing else is.
        for attempt in (1, 2):
            try:
                return await self._send_once(method, url, headers, body)
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                if attempt == 2:
                    raise FetchError(url, f"connection failed: {exc}") from exc
            except httpx.HTTPError as exc:
                raise FetchError(url, f"{type(exc).__name__}: {exc}") from exc
            except BlockedAddressError as exc:  # raised by the resolver at connect time
                raise FetchError(url, str(exc)) from exc
        raise AssertionError("unreachable")

    async def _send_once(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, httpx.Headers, bytes]:
        request = self._http.build_request(method, url, headers=headers, content=body)
        response = await self._http.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise FetchError(url, f"body of {declared} bytes is over {MAX_BODY_BYTES}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise FetchError(url, f"body is over {MAX_BODY_BYTES} bytes")
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)
        finally:
            await response.aclose()


def _parse_json(fetched: FetchedBody) -> Any:
    try:
        return orjson.loads(fetched.body)
    except orjson.JSONDecodeError as exc:
        raise FetchError(fetched.url, f"not JSON: {exc}", fetched.status) from exc
