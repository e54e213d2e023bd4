"""The one HTTP client through which all of fedcop's federation traffic goes.

Signed GETs and POSTs, with the limits a server exposed to the whole fediverse needs: timeouts,
a body cap applied while streaming, at most three redirects with every hop checked by the SSRF
guard, http(s) only, and the rule that a fetched document's `id` is the URL it came from.

Bytes move through `transport.py`: aiohttp in production, any httpx transport in tests.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from fedcop.federation.signing import SigningPool
from fedcop.federation.transport import (
    MAX_CONNECTIONS_PER_HOST,
    AiohttpTransport,
    BodyTooLargeError,
    HttpxTransport,
    Transport,
    TransportError,
)
from fedcop.security.httpsig import PrivateKey, sign_request, sign_request_rfc9421
from fedcop.security.ssrf import AddressGuard, BlockedAddressError

# Mastodon's own Accept for AS2 fetches; some servers only answer the profile form.
AS2_ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
AS2_POST_CONTENT_TYPE = "application/activity+json"
AS_PROFILE = "https://www.w3.org/ns/activitystreams"
MAX_REDIRECTS = 3
WHOLE_REQUEST_SECONDS = 30.0
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


class FederationClient:
    def __init__(
        self,
        *,
        user_agent: str,
        guard: AddressGuard,
        transport: httpx.AsyncBaseTransport | None = None,
        per_host: int = MAX_CONNECTIONS_PER_HOST,
    ) -> None:
        self.guard = guard
        self._transport: Transport = (
            AiohttpTransport(guard, user_agent=user_agent, per_host=per_host)
            if transport is None
            else HttpxTransport(transport, user_agent=user_agent)
        )
        self._rfc9421_hosts: set[str] = set()
        self._signing_pool = SigningPool(threads=2)

    async def aclose(self) -> None:
        await self._transport.aclose()
        self._signing_pool.shutdown()

    async def _sign(self, sign: Callable[..., dict[str, str]], *args: Any) -> dict[str, str]:
        # RSA signing is ~45% of a delivery's CPU and `cryptography` (47 and later,
        # pyca/cryptography#14370) releases the GIL while it signs, so signing on a small pool
        # overlaps it with the event loop's own work (fan-out 0.45-0.52 of the raw signing
        # rate with 45.0.7, which holds the GIL, 0.69-0.76 with 50.0.2; docs/performance.md).
        return await self._signing_pool.sign(functools.partial(sign, *args))

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
        if not is_activitystreams_type(fetched.content_type):
            # A JSON file uploaded to a server (an attachment, say) is served from its URL,
            # but it is not an object that server publishes: Mastodon takes a fetched object
            # only as activity+json or ld+json with the ActivityStreams profile
            # (https://github.com/mastodon/mastodon/blob/main/app/helpers/jsonld_helper.rb,
            # `valid_activitypub_content_type?`), and so do we.
            raise FetchError(
                fetched.url,
                f"served as {fetched.content_type or 'no Content-Type'},"
                " not as an ActivityStreams document",
                fetched.status,
            )
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
    ) -> tuple[int, Mapping[str, str], bytes]:
        # A keep-alive connection the peer closed while idle fails before any response; that
        # one failure is retried, nothing else is.
        for attempt in (1, 2):
            try:
                response = await self._transport.send(method, url, headers, body)
                return response.status, response.headers, response.body
            except TransportError as exc:
                if not exc.closed_connection or attempt == 2:
                    raise FetchError(url, exc.reason) from exc
            except (BodyTooLargeError, BlockedAddressError) as exc:
                raise FetchError(url, str(exc)) from exc
        raise AssertionError("unreachable")


def is_activitystreams_type(content_type: str) -> bool:
    """`application/activity+json`, or `application/ld+json` whose profile names
    ActivityStreams (parameters in any order, profile quoted or not, case-insensitive names)."""
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type == "application/activity+json":
        return True
    if media_type != "application/ld+json":
        return False
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "profile" and AS_PROFILE in value.strip().strip('"').split():
            return True
    return False


def _parse_json(fetched: FetchedBody) -> Any:
    try:
        return orjson.loads(fetched.body)
    except orjson.JSONDecodeError as exc:
        raise FetchError(fetched.url, f"not JSON: {exc}", fetched.status) from exc
