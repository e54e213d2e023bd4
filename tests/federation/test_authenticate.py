"""Inbound signatures end to end: real GoToSocial requests, policy, key rotation, failures."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fedcop.federation.authenticate import AuthenticationError, authenticate
from fedcop.federation.remote_actors import ActorKey
from fedcop.models import utcnow
from fedcop.security.httpsig_common import parse_http_date
from fedcop.services.policy import block_domain
from fedcop.web.state import AppState
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "gotosocial"
GTS_ACTOR = "http://gts.test/users/alice"
_AS2 = {"content-type": "application/activity+json"}  # as GoToSocial serves its actors


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())  # type: ignore[no-any-return]


def _serve_gotosocial(net: InProcessNetwork) -> list[httpx.Request]:
    """gts.test as GoToSocial serves it: a key stub at /main-key, the full actor at its id."""
    stub = _fixture("actor-key-document.json")
    full = {
        **stub,
        "inbox": f"{GTS_ACTOR}/inbox",
        "endpoints": {"sharedInbox": "http://gts.test/inbox"},
    }
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/users/alice/main-key":
            return httpx.Response(200, json=stub, headers=_AS2)
        if request.url.path == "/users/alice":
            return httpx.Response(200, json=full, headers=_AS2)
        return httpx.Response(404)

    net.add_handler("gts.test", handler)
    return seen


async def _authenticate_fixture(
    state: AppState,
    fixture: dict[str, Any],
    *,
    body: bytes | None = None,
    shift: timedelta = timedelta(),
) -> ActorKey:
    return await authenticate(
        method=fixture["method"],
        target=fixture["path"],
        headers=fixture["headers"],
        body=fixture["body_raw"].encode() if body is None else body,
        scheme="http",
        actors=state.remote_actors,
        policy=state.policy,
        now=parse_http_date(fixture["headers"]["date"]) + shift,
    )


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("inbox-*.json")))
async def test_real_gotosocial_requests_authenticate(
    home: AppState, net: InProcessNetwork, name: str
) -> None:
    seen = _serve_gotosocial(net)
    key = await _authenticate_fixture(home, _fixture(name))
    assert key.ap_id == GTS_ACTOR
    assert key.key_id == "http://gts.test/users/alice/main-key"
    assert [r.url.path for r in seen] == ["/users/alice/main-key", "/users/alice"]
    # the second request from the same server needs no fetch at all
    await _authenticate_fixture(home, _fixture(name))
    assert len(seen) == 2


async def test_stale_request_is_refused_before_any_fetch(
    home: AppState, net: InProcessNetwork
) -> None:
    seen = _serve_gotosocial(net)
    with pytest.raises(AuthenticationError) as caught:
        await _authenticate_fixture(home, _fixture("inbox-follow.json"), shift=timedelta(hours=2))
    assert caught.value.status == 401
    assert seen == []


async def test_tampered_body_is_refused_before_any_fetch(
    home: AppState, net: InProcessNetwork
) -> None:
    seen = _serve_gotosocial(net)
    fixture = _fixture("inbox-follow.json")
    tampered = fixture["body_raw"].replace("Follow", "Block").encode()
    with pytest.raises(AuthenticationError) as caught:
        await _authenticate_fixture(home, fixture, body=tampered)
    assert caught.value.status == 401
    assert "digest" in caught.value.reason.lower()
    assert seen == []


async def test_blocked_server_is_403_without_fetching(
    home: AppState, net: InProcessNetwork
) -> None:
    seen = _serve_gotosocial(net)
    await block_domain(home.db, "gts.test", "suspend", "spam")
    await home.policy.reload()
    with pytest.raises(AuthenticationError) as caught:
        await _authenticate_fixture(home, _fixture("inbox-follow.json"))
    assert caught.value.status == 403
    assert seen == []


async def test_subdomains_of_a_blocked_domain_are_blocked(home: AppState) -> None:
    await block_domain(home.db, "bad.example", "suspend")
    await home.policy.reload()
    assert await home.policy.is_suspended("social.bad.example")
    assert await home.policy.is_suspended("bad.example:8443")
    assert not await home.policy.is_suspended("notbad.example")


async def test_unreachable_key_server_is_503_so_the_peer_retries(
    home: AppState, net: InProcessNetwork
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    net.add_handler("gts.test", down)
    with pytest.raises(AuthenticationError) as caught:
        await _authenticate_fixture(home, _fixture("inbox-follow.json"))
    assert caught.value.status == 503


async def test_key_that_is_gone_is_401(home: AppState, net: InProcessNetwork) -> None:
    net.add_handler("gts.test", lambda request: httpx.Response(410))
    with pytest.raises(AuthenticationError) as caught:
        await _authenticate_fixture(home, _fixture("inbox-follow.json"))
    assert caught.value.status == 401


async def _authenticate_post(state: AppState, peer: FakePeer, body: bytes) -> ActorKey:
    url = "https://home.test/inbox"
    headers = peer.signed_headers("POST", url, body)
    return await authenticate(
        method="POST", target="/inbox", headers=headers, body=body, scheme="https",
        actors=state.remote_actors, policy=state.policy, now=utcnow(),
    )  # fmt: skip


async def test_rotated_key_is_refetched_once_then_verifies(home: AppState, peer: FakePeer) -> None:
    await _authenticate_post(home, peer, b'{"type":"Like"}')
    assert len(peer.requests) == 1
    peer.rotate()
    key = await _authenticate_post(home, peer, b'{"type":"Like"}')
    assert key.public_key_pem == peer.keys.public_pem
    assert len(peer.requests) == 2  # exactly one refetch
    await _authenticate_post(home, peer, b'{"type":"Like"}')
    assert len(peer.requests) == 2  # and the new key is now cached


async def test_wrong_key_fails_after_one_refetch(home: AppState, peer: FakePeer) -> None:
    await _authenticate_post(home, peer, b"{}")
    impostor = FakePeer("peer.test")  # same key id, a different private key
    with pytest.raises(AuthenticationError) as caught:
        await _authenticate_post(home, impostor, b"{}")
    assert caught.value.status == 401
    assert "does not verify" in caught.value.reason
    assert len(peer.requests) == 2
