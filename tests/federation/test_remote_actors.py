"""Resolving remote actors: by id, by handle, by key id; refresh, coalescing and refusals."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from fedcop.federation.remote_actors import RemoteActors, ResolveError
from fedcop.models import Actor, utcnow
from fedcop.web.state import AppState
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer


async def _count_remote(state: AppState) -> int:
    async with state.db() as session:
        return await session.scalar(select(func.count()).where(Actor.local.is_(False))) or 0


def gated_peer(net: InProcessNetwork) -> tuple[FakePeer, asyncio.Event]:
    """A peer at slow.test that answers nothing until the event is set."""
    slow = FakePeer("slow.test")
    gate = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return slow.handler(request)

    net.routes["slow.test"] = httpx.MockTransport(handler)
    return slow, gate


async def test_resolve_by_handle_through_webfinger(home: AppState, peer: FakePeer) -> None:
    actor = await home.remote_actors.by_handle("@remote@peer.test")
    assert actor.ap_id == peer.actor_id
    assert actor.local is False
    assert actor.domain == "peer.test"
    assert actor.inbox_url == f"{peer.actor_id}/inbox"
    assert actor.shared_inbox_url == "https://peer.test/inbox"
    assert actor.public_key_id == peer.key_id
    assert actor.public_key_pem == peer.keys.public_pem
    assert [r.url.path for r in peer.requests] == ["/.well-known/webfinger", "/users/remote"]
    # every outbound GET is signed by the instance actor
    for request in peer.requests:
        assert 'keyId="https://home.test/actor#main-key"' in request.headers["signature"]


async def test_unknown_handle_is_a_clear_error(home: AppState, peer: FakePeer) -> None:
    with pytest.raises(ResolveError, match="WebFinger"):
        await home.remote_actors.by_handle("@nobody@peer.test")
    with pytest.raises(ResolveError, match="not a handle"):
        await home.remote_actors.by_handle("nobody")


async def test_stored_actor_is_reused_until_it_is_old(home: AppState, peer: FakePeer) -> None:
    await home.remote_actors.get(peer.actor_id)
    await home.remote_actors.get(peer.actor_id)
    assert len(peer.requests) == 1
    async with home.db.begin() as session:
        await session.execute(
            update(Actor)
            .where(Actor.ap_id == peer.actor_id)
            .values(fetched_at=utcnow() - timedelta(days=2))
        )
    peer.extra = {"name": "Renamed"}
    actor = await home.remote_actors.get(peer.actor_id)
    assert actor.name == "Renamed"
    assert len(peer.requests) == 2
    assert await _count_remote(home) == 1


async def test_a_stale_copy_is_used_while_its_server_is_down(
    home: AppState, peer: FakePeer
) -> None:
    await home.remote_actors.get(peer.actor_id)
    async with home.db.begin() as session:
        await session.execute(update(Actor).values(fetched_at=utcnow() - timedelta(days=2)))
    peer.status_override = 503
    actor = await home.remote_actors.get(peer.actor_id)
    assert actor.ap_id == peer.actor_id
    with pytest.raises(ResolveError) as caught:
        await home.remote_actors.get(peer.actor_id, refresh=True)
    assert caught.value.temporary


async def test_concurrent_lookups_share_one_fetch(home: AppState, net: InProcessNetwork) -> None:
    slow, gate = gated_peer(net)
    lookups = [asyncio.create_task(home.remote_actors.key(slow.key_id)) for _ in range(25)]
    await asyncio.sleep(0.05)
    gate.set()
    keys = await asyncio.gather(*lookups)
    assert {key.public_key_pem for key in keys} == {slow.keys.public_pem}
    assert len(slow.requests) == 1


async def test_two_processes_storing_one_actor_at_once_leave_one_row(
    home: AppState, net: InProcessNetwork
) -> None:
    """Each process has its own RemoteActors (no shared in-flight fetch): both fetch, and the
    two writes of the same actor become one insert and one update."""
    slow, gate = gated_peer(net)
    other = RemoteActors(
        home.db, home.client, home.urls, home.instance_signer, max_age=timedelta(days=1)
    )
    lookups = [
        asyncio.create_task(resolver.get(slow.actor_id))
        for resolver in (home.remote_actors, other) * 3
    ]
    await asyncio.sleep(0.05)
    gate.set()
    actors = await asyncio.gather(*lookups)
    assert len(slow.requests) == 2
    assert len({actor.id for actor in actors}) == 1
    assert {actor.public_key_pem for actor in actors} == {slow.keys.public_pem}
    assert await _count_remote(home) == 1


async def test_gotosocial_style_key_id_resolves_to_its_owner(
    home: AppState, net: InProcessNetwork
) -> None:
    gts = net.add_peer(FakePeer("gts.test", username="alice", key_style="path"))
    key = await home.remote_actors.key(gts.key_id)
    assert key.ap_id == gts.actor_id
    assert key.key_id == "https://gts.test/users/alice/main-key"


async def test_key_not_listed_by_its_owner_is_refused(home: AppState, peer: FakePeer) -> None:
    with pytest.raises(ResolveError, match="does not list the key"):
        await home.remote_actors.key(peer.actor_id + "#other-key")


async def test_actor_naming_a_key_on_another_host_is_refused(
    home: AppState, peer: FakePeer
) -> None:
    peer.extra = {
        "publicKey": {
            "id": "https://elsewhere.test/key",
            "owner": peer.actor_id,
            "publicKeyPem": peer.keys.public_pem,
        }
    }
    with pytest.raises(ResolveError, match="another host"):
        await home.remote_actors.get(peer.actor_id)


async def test_remote_document_cannot_claim_a_local_id(
    home: AppState, net: InProcessNetwork
) -> None:
    def impostor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "https://home.test/users/admin", "type": "Person"})

    net.add_handler("impostor.test", impostor)
    with pytest.raises(ResolveError):
        await home.remote_actors.get("https://impostor.test/users/x")
    assert await _count_remote(home) == 0


@pytest.mark.parametrize(
    ("status", "temporary"), [(404, False), (410, False), (500, True), (429, True)]
)
async def test_failures_say_whether_they_may_pass(
    home: AppState, peer: FakePeer, status: int, temporary: bool
) -> None:
    peer.status_override = status
    with pytest.raises(ResolveError) as caught:
        await home.remote_actors.get(peer.actor_id)
    assert caught.value.temporary is temporary
