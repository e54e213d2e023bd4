"""`fedcop keys rotate` with a follower's server that, like GoToSocial, verifies every request
with the key it has cached and never fetches it again: only an Update signed with that key
can teach it the new one, and after that everything verifies with the new key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Select, select, update

from fedcop.errors import ConflictError
from fedcop.models import Actor, Delivery, LocalKey, OutboxActivity, WorkState
from fedcop.security.httpsig import SignatureError, parse_signature, verify
from fedcop.services import deliveries as delivery_services
from fedcop.services import follows as follow_services
from fedcop.services.actors import create_person
from fedcop.services.keys import rotate_key
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed

ALICE = "https://home.test/users/alice"


class KeyPinningServer:
    """Answers 401 to a signature its cached key does not verify; takes a new key only from a
    verified Update of the actor (GoToSocial's `derefPubKey` + `verifyAccountKeysOnUpdate`)."""

    def __init__(self, peer: FakePeer, cached_key: str) -> None:
        self.peer = peer
        self.cached_key = cached_key
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return self.peer.handler(request)
        activity = httpx.Response(200, content=request.content).json()
        parsed = parse_signature(
            "POST", request.url.raw_path.decode(), dict(request.headers), request.content
        )
        try:
            verify(parsed, self.cached_key, datetime.now(UTC))
        except SignatureError:
            self.refused.append(activity["type"])
            return httpx.Response(401)
        self.accepted.append(activity)
        if activity["type"] == "Update" and activity["object"].get("id") == ALICE:
            self.cached_key = activity["object"]["publicKey"]["publicKeyPem"]
        return httpx.Response(202)


def _alices_key() -> Select[tuple[LocalKey]]:
    return select(LocalKey).join(Actor, Actor.id == LocalKey.actor_id).where(Actor.ap_id == ALICE)


async def _public_key(home: AppState) -> str:
    async with home.db() as session:
        pem = await session.scalar(select(Actor.public_key_pem).where(Actor.ap_id == ALICE))
    assert pem is not None
    return pem


async def test_the_rotation_update_is_signed_with_the_key_it_replaces(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await create_person(home.db, home.urls, "alice")
    follow = follow_activity(peer, ALICE)
    assert (await post_signed(net, peer, f"{ALICE}/inbox", follow)).status_code == 202
    await build_workers(home).run_until_idle()  # alice accepts: peer now follows her
    server = KeyPinningServer(peer, await _public_key(home))
    net.routes["peer.test"] = httpx.MockTransport(server.handler)

    first_key = await _public_key(home)
    await rotate_key(home.db, home.urls, "alice")
    second_key = await _public_key(home)
    assert second_key != first_key
    await build_workers(home).run_until_idle()
    [update] = server.accepted
    assert update["type"] == "Update"
    assert update["object"]["publicKey"]["publicKeyPem"] == second_key
    assert server.cached_key == second_key

    # everything after the Update is signed with the new key
    await follow_services.follow(home.db, home.remote_actors, "alice", peer.actor_id)
    await build_workers(home).run_until_idle()
    assert [a["type"] for a in server.accepted] == ["Update", "Follow"]
    assert server.refused == []

    # a second rotation: the Update is signed with the second key, not the first
    await rotate_key(home.db, home.urls, "alice")
    await build_workers(home).run_until_idle()
    assert [a["type"] for a in server.accepted] == ["Update", "Follow", "Update"]
    assert server.cached_key == await _public_key(home)
    async with home.db() as session:
        key = await session.scalar(_alices_key())
    assert key is not None
    assert key.previous_private_key_pem is not None


async def test_without_the_old_keys_signature_such_a_server_refuses_everything(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """The check on the test's own peer: an Update signed with the new key is refused, and
    then so is everything else (what `keys rotate` did before)."""
    await create_person(home.db, home.urls, "alice")
    follow = follow_activity(peer, ALICE)
    assert (await post_signed(net, peer, f"{ALICE}/inbox", follow)).status_code == 202
    await build_workers(home).run_until_idle()
    server = KeyPinningServer(peer, await _public_key(home))
    net.routes["peer.test"] = httpx.MockTransport(server.handler)
    await rotate_key(home.db, home.urls, "alice")
    async with home.db.begin() as session:  # forget the old key: sign the Update with the new
        key = await session.scalar(_alices_key())
        assert key is not None
        key.previous_private_key_pem = None
    await build_workers(home).run_until_idle()
    assert server.refused == ["Update", "Update"]  # and again as RFC 9421 (double knock)
    assert server.accepted == []


async def test_a_second_rotation_waits_for_the_first_ones_update(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """While the first Update is queued for a server (down, say), that server knows only the
    first key; a second rotation would leave it with no Update it can verify."""
    await create_person(home.db, home.urls, "alice")
    follow = follow_activity(peer, ALICE)
    assert (await post_signed(net, peer, f"{ALICE}/inbox", follow)).status_code == 202
    await build_workers(home).run_until_idle()
    server = KeyPinningServer(peer, await _public_key(home))
    net.routes.pop("peer.test")  # down: the Update stays queued
    await rotate_key(home.db, home.urls, "alice")
    await build_workers(home).delivery.run_once()
    second_key = await _public_key(home)

    with pytest.raises(ConflictError, match="still queued for 1 server"):
        await rotate_key(home.db, home.urls, "alice")
    async with home.db.begin() as session:  # skipped (server marked unavailable) is queued too
        await session.execute(
            update(Delivery)
            .where(Delivery.state == WorkState.PENDING)
            .values(state=WorkState.SKIPPED)
        )
    with pytest.raises(ConflictError, match="still queued for 1 server"):
        await rotate_key(home.db, home.urls, "alice")
    assert await _public_key(home) == second_key  # nothing changed

    net.routes["peer.test"] = httpx.MockTransport(server.handler)  # back
    await delivery_services.retry(home.db, "peer.test")
    await build_workers(home).run_until_idle()
    assert [a["type"] for a in server.accepted] == ["Update"]
    await rotate_key(home.db, home.urls, "alice")  # now it may
    await build_workers(home).run_until_idle()
    assert server.cached_key == await _public_key(home)

    net.routes.pop("peer.test")
    superseded = await rotate_key(home.db, home.urls, "alice")
    await build_workers(home).delivery.run_once()
    await rotate_key(home.db, home.urls, "alice", force=True)  # the operator insists
    # the superseded Update advertises a key no longer ours: what it had not delivered is
    # dropped, so that no retry sends it signed with the current key
    async with home.db() as session:
        left = await session.scalars(
            select(Delivery.state)
            .join(OutboxActivity, OutboxActivity.id == Delivery.activity_id)
            .where(OutboxActivity.ap_id == superseded)
        )
        assert left.all() == []
    assert await delivery_services.retry(home.db, "peer.test") == 1  # the newest Update only
