"""The federation client: SSRF guard, limits, redirects, the id rule and signed requests."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest

from fedcop.federation.client import (
    FederationClient,
    FetchError,
    Signer,
)
from fedcop.federation.transport import MAX_BODY_BYTES
from fedcop.security.httpsig import load_private_key, load_public_key, parse_signature, verify
from fedcop.security.keys import generate_key_pair
from fedcop.security.ssrf import AddressGuard, BlockedAddressError

KEYS = generate_key_pair()
SIGNER = Signer("https://fedcop.test/actor#main-key", load_private_key(KEYS.private_pem))
# How Mastodon, GoToSocial and Lemmy serve their objects.
_AS2 = {"content-type": "application/activity+json; charset=utf-8"}
# A routable-looking address for names in these tests; no packet is ever sent to it, because
# every request here is answered by an in-process MockTransport.
PUBLIC_ADDRESS = "93.184.216.34"

BLOCKED_ADDRESSES = [
    "127.0.0.1",  # loopback
    "127.8.9.10",
    "10.1.2.3",  # private
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # link-local (cloud metadata)
    "100.64.0.1",  # shared address space
    "224.0.0.251",  # multicast
    "240.0.0.1",  # reserved
    "0.0.0.0",  # unspecified  # noqa: S104 - an address to refuse, not to bind
    "192.0.2.10",  # documentation
    "::1",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::127.0.0.1",  # IPv4-compatible (deprecated) loopback
    "::ffff:0:7f00:1",  # IPv4-translated (RFC 2765) loopback
    "::8.8.8.8",  # ::/8 is reserved, whatever it holds
    "64:ff9b::7f00:1",  # 127.0.0.1 behind a NAT64 gateway
    "64:ff9b::a9fe:a9fe",  # 169.254.169.254 behind a NAT64 gateway
    "64:ff9b:1::808:808",  # local-use NAT64, whatever it embeds
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]
# Public IPv4 addresses in IPv6 forms that reach them: allowed like the IPv4 address itself.
PUBLIC_IN_IPV6 = ["::ffff:93.184.216.34", "64:ff9b::5db8:d822", "2002:5db8:d822::1"]


def _resolver(table: dict[str, str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return [table[host]]

    return resolve


def _client(handler, table: dict[str, str] | None = None, allow_private: bool = False):  # type: ignore[no-untyped-def]
    guard = AddressGuard(allow_private=allow_private, resolve=_resolver(table or {}))
    return FederationClient(
        user_agent="fedcop/test", guard=guard, transport=httpx.MockTransport(handler)
    )


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request may be sent, but {request.url} was")


@pytest.mark.parametrize("address", BLOCKED_ADDRESSES)
async def test_every_blocked_address_class_is_refused_as_a_literal(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    client = _client(_never)
    with pytest.raises(FetchError, match="not a public address"):
        await client.fetch_json(f"https://{host}/users/x", SIGNER)


@pytest.mark.parametrize("address", BLOCKED_ADDRESSES)
async def test_every_blocked_address_class_is_refused_behind_a_name(address: str) -> None:
    client = _client(_never, {"evil.example": address})
    with pytest.raises(FetchError, match=r"evil\.example resolves to"):
        await client.post("https://evil.example/inbox", b"{}", SIGNER)


@pytest.mark.parametrize("address", PUBLIC_IN_IPV6)
async def test_a_public_ipv4_address_in_an_ipv6_form_is_allowed(address: str) -> None:
    guard = AddressGuard(resolve=_resolver({"peer.example": address}))
    assert await guard.addresses("peer.example", 443) == [address]


async def test_a_name_with_one_bad_address_among_good_ones_is_refused() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return [PUBLIC_ADDRESS, "127.0.0.1"]

    guard = AddressGuard(resolve=resolve)
    with pytest.raises(BlockedAddressError):
        await guard.addresses("mixed.example", 443)


async def test_redirect_to_a_private_address_is_refused() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://127.0.0.1:8080/admin"})

    client = _client(handler, {"peer.example": PUBLIC_ADDRESS})
    with pytest.raises(FetchError, match="not a public address"):
        await client.fetch_json("https://peer.example/users/a", SIGNER)
    assert seen == ["https://peer.example/users/a"]


async def test_redirect_to_a_name_that_resolves_to_loopback_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"location": "https://sneaky.example/x"})

    client = _client(handler, {"peer.example": PUBLIC_ADDRESS, "sneaky.example": "127.0.0.1"})
    with pytest.raises(FetchError, match=r"sneaky\.example resolves to 127\.0\.0\.1"):
        await client.fetch_json("https://peer.example/users/a", SIGNER)


async def test_loopback_is_allowed_when_the_operator_says_so() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": str(request.url), "type": "Note"}, headers=_AS2)

    client = _client(handler, {"peer.test": "127.0.0.1"}, allow_private=True)
    document = await client.fetch_document("https://peer.test/notes/1", SIGNER)
    assert document["type"] == "Note"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/activity+json",
        "application/activity+json; charset=utf-8",
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        "Application/LD+JSON;charset=utf-8;Profile=https://www.w3.org/ns/activitystreams",
        'application/ld+json; profile="https://example.org/x https://www.w3.org/ns/activitystreams"',
    ],
)
async def test_an_object_served_as_activitystreams_is_taken(content_type: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        document = {"id": str(request.url), "type": "Note"}
        return httpx.Response(200, json=document, headers={"content-type": content_type})

    client = _client(handler, {"peer.example": PUBLIC_ADDRESS})
    assert (await client.fetch_document("https://peer.example/notes/1", SIGNER))["type"] == "Note"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",  # an uploaded file, say, on a server that serves what it stores
        "application/ld+json",
        'application/ld+json; profile="https://example.org/other"',
        "text/html",
        "",
    ],
)
async def test_json_not_served_as_activitystreams_is_refused(content_type: str) -> None:
    """A document whose id matches its URL but which its server does not serve as an
    ActivityStreams object (an attachment someone uploaded) must not pass as an actor."""

    def handler(request: httpx.Request) -> httpx.Response:
        document = {"id": str(request.url), "type": "Person", "inbox": "https://a/inbox"}
        response = httpx.Response(200, json=document)
        response.headers["content-type"] = content_type
        return response

    client = _client(handler, {"peer.example": PUBLIC_ADDRESS})
    with pytest.raises(FetchError, match="not as an ActivityStreams document"):
        await client.fetch_document("https://peer.example/media/actor.json", SIGNER)


@pytest.mark.parametrize("url", ["ftp://peer.example/x", "file:///etc/passwd", "gopher://a/b"])
async def test_only_http_and_https(url: str) -> None:
    with pytest.raises(FetchError, match="only http and https"):
        await _client(_never).fetch_json(url, SIGNER)


async def test_at_most_three_redirects() -> None:
    hops: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hops.append(request.url.path)
        return httpx.Response(302, headers={"location": f"/hop{len(hops)}"})

    client = _client(handler, {"peer.example": PUBLIC_ADDRESS})
    with pytest.raises(FetchError, match="more than 3 redirects"):
        await client.fetch_json("https://peer.example/start", SIGNER)
    assert hops == ["/start", "/hop1", "/hop2", "/hop3"]


async def test_three_redirects_are_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        step = int(request.url.path.strip("/") or 0)
        if step < 3:
            return httpx.Response(302, headers={"location": f"/{step + 1}"})
        return httpx.Response(200, json={"id": str(request.url)}, headers=_AS2)

    client = _client(handler, {"peer.example": PUBLIC_ADDRESS})
    document = await client.fetch_document("https://peer.example/0", SIGNER)
    assert document["id"] == "https://peer.example/3"


@pytest.mark.parametrize("declare_length", [True, False])
async def test_bodies_over_one_megabyte_are_cut_off(declare_length: bool) -> None:
    big = b'{"id":"' + b"x" * MAX_BODY_BYTES + b'"}'

    def handler(request: httpx.Request) -> httpx.Response:
        if declare_length:
            return httpx.Response(200, content=big)
        return httpx.Response(200, content=_chunks(big))

    client = _client(handler, {"peer.example": PUBLIC_ADDRESS})
    with pytest.raises(FetchError, match="over 1000000"):
        await client.fetch_json("https://peer.example/big", SIGNER)


async def _chunks(data: bytes):  # type: ignore[no-untyped-def]
    for start in range(0, len(data), 65536):
        yield data[start : start + 65536]


async def test_document_whose_id_differs_is_refetched_from_its_id() -> None:
    documents = {
        "/alias": {"id": "https://peer.example/users/real", "type": "Person", "name": "alias"},
        "/users/real": {"id": "https://peer.example/users/real", "type": "Person", "name": "real"},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=documents[request.url.path], headers=_AS2)

    client = _client(handler, {"peer.example": PUBLIC_ADDRESS})
    document = await client.fetch_document("https://peer.example/alias", SIGNER)
    assert document["name"] == "real"  # the copy from its own id, not the one that claimed it


async def test_spoofed_id_is_refused() -> None:
    """CVE-2024-23832: a server serving a document that claims someone else's id."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "attacker.example":
            return httpx.Response(200, json={"id": "https://victim.example/users/v"}, headers=_AS2)
        return httpx.Response(
            200, json={"id": "https://victim.example/users/v", "type": "x"}, headers=_AS2
        )

    table = {"attacker.example": PUBLIC_ADDRESS, "victim.example": PUBLIC_ADDRESS}
    client = _client(handler, table)
    document = await client.fetch_document("https://attacker.example/users/v", SIGNER)
    # what comes back is the victim's own copy, fetched from the victim
    assert document == {"id": "https://victim.example/users/v", "type": "x"}

    def liar(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "https://victim.example/users/v"}, headers=_AS2)

    def victim_redirects(request: httpx.Request) -> httpx.Response:
        if request.url.host == "victim.example":
            return httpx.Response(302, headers={"location": "https://attacker.example/v2"})
        return liar(request)

    with pytest.raises(FetchError, match="does not match"):
        await _client(victim_redirects, table).fetch_document(
            "https://attacker.example/users/v", SIGNER
        )


async def test_get_and_post_are_signed_and_verify() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"id": str(request.url)}, headers=_AS2)
        return httpx.Response(202)

    client = _client(handler, {"peer.example": PUBLIC_ADDRESS})
    await client.fetch_document("https://peer.example/users/a?x=1", SIGNER)
    result = await client.post("https://peer.example/inbox", b'{"type":"Follow"}', SIGNER)
    assert result.status == 202
    get, post = requests
    assert get.headers["user-agent"] == "fedcop/test"
    assert "application/activity+json" in get.headers["accept"]
    assert 'headers="(request-target) host date"' in get.headers["signature"]
    assert 'headers="(request-target) host date digest"' in post.headers["signature"]
    assert post.headers["content-type"] == "application/activity+json"
    for request in requests:
        target = request.url.raw_path.decode()
        parsed = parse_signature(
            request.method, target, dict(request.headers), request.content or None
        )
        verify(parsed, load_public_key(KEYS.public_pem), datetime.now(UTC))


async def test_post_falls_back_to_rfc9421_after_401_and_remembers() -> None:
    kinds: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        rfc = "signature-input" in request.headers
        kinds.append("rfc9421" if rfc else "cavage")
        return httpx.Response(202 if rfc else 401)

    client = _client(handler, {"strict.example": PUBLIC_ADDRESS})
    assert (await client.post("https://strict.example/inbox", b"{}", SIGNER)).status == 202
    assert (await client.post("https://strict.example/inbox", b"{}", SIGNER)).status == 202
    assert kinds == ["cavage", "rfc9421", "rfc9421"]


async def test_a_closed_keepalive_connection_is_retried_once() -> None:
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(202)

    client = _client(handler, {"peer.example": PUBLIC_ADDRESS})
    assert (await client.post("https://peer.example/inbox", b"{}", SIGNER)).status == 202
    assert len(attempts) == 2


async def test_connection_errors_are_fetch_errors_without_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    client = _client(handler, {"peer.example": PUBLIC_ADDRESS})
    with pytest.raises(FetchError) as caught:
        await client.post("https://peer.example/inbox", b"{}", SIGNER)
    assert caught.value.status is None


async def test_real_transport_refuses_loopback_at_connect_time() -> None:
    """The aiohttp connector asks the same guard, so resolution and connection agree."""
    guard = AddressGuard(allow_private=False)
    client = FederationClient(user_agent="t", guard=guard)  # the production transport
    try:
        with pytest.raises(FetchError, match="not a public address"):
            await client.post("http://localhost:9/inbox", b"{}", SIGNER)
    finally:
        await client.aclose()


async def test_a_peer_that_never_finishes_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fedcop.federation.client.WHOLE_REQUEST_SECONDS", 0.2)

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(202)

    client = _client(slow, {"slow.example": PUBLIC_ADDRESS})
    started = time.monotonic()
    with pytest.raises(FetchError, match="no answer within"):
        await client.post("https://slow.example/inbox", b"{}", SIGNER)
    assert time.monotonic() - started < 2
