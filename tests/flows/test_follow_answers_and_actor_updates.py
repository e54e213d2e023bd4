"""Answers to our follows (Accept, Reject), remote profile and key changes, people followed.

Each test tells one story a Mastodon user would notice if fedcop got it wrong: a follow
accepted by someone who was never asked, a rejected follow that lingers, a renamed account
or a rotated key that stops federating, a follow of a person that never gets its Accept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import aliased

from fedcop.models import Actor, Follow, FollowState, InboxItem, WorkState
from fedcop.security.httpsig import load_public_key, parse_signature, verify
from fedcop.services import follows as follow_services
from fedcop.services.actors import create_group, create_person
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed

ALICE = "https://home.test/users/alice"
ALICE_INBOX = f"{ALICE}/inbox"
INBOX = "https://home.test/inbox"
GROUP = "https://home.test/groups/frailty"
AS2 = {"accept": "application/activity+json"}


# -- helpers -------------------------------------------------------------------------------


async def _alice_follows_peer(home: AppState, peer: FakePeer) -> dict[str, Any]:
    """alice follows the peer; returns the Follow as the peer received it."""
    await create_person(home.db, home.urls, "alice")
    made = await follow_services.follow(home.db, home.remote_actors, "alice", peer.actor_id)
    assert made.state == FollowState.PENDING
    await build_workers(home).run_until_idle()
    [follow] = [a for a in peer.inbox if a["type"] == "Follow"]
    assert follow["actor"] == ALICE
    assert follow["object"] == peer.actor_id
    return follow


def _answer(responder: FakePeer, kind: str, follow: dict[str, Any], n: int = 1) -> dict[str, Any]:
    """`Accept{Follow}` or `Reject{Follow}` by `responder`, embedding the Follow (as Mastodon)."""
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{responder.actor_id}#{kind.lower()}s/follows/{n}",
        "type": kind,
        "actor": responder.actor_id,
        "object": {k: v for k, v in follow.items() if k != "@context"},
    }


async def _follow_states(home: AppState) -> list[tuple[str, str, str]]:
    """Every follow stored here as (follower, followed, state)."""
    follower, followed = aliased(Actor), aliased(Actor)
    query = (
        select(follower.ap_id, followed.ap_id, Follow.state)
        .join(follower, Follow.follower_id == follower.id)
        .join(followed, Follow.followed_id == followed.id)
        .order_by(Follow.id)
    )
    async with home.db() as session:
        return [(a, b, state) for a, b, state in (await session.execute(query)).all()]


async def _inbox_state(home: AppState, activity_id: str) -> tuple[str | None, str | None]:
    async with home.db() as session:
        row = (
            await session.execute(
                select(InboxItem.state, InboxItem.last_error).where(InboxItem.ap_id == activity_id)
            )
        ).first()
    return (row[0], row[1]) if row is not None else (None, None)


async def _collection(net: InProcessNetwork, url: str) -> tuple[int, list[str]]:
    """A paged collection's totalItems and the items of its first page."""
    async with httpx.AsyncClient(transport=net) as client:
        root = await client.get(url, headers=AS2)
        assert root.status_code == 200, root.text
        page = await client.get(root.json()["first"], headers=AS2)
        assert page.status_code == 200, page.text
    return int(root.json()["totalItems"]), list(page.json()["orderedItems"])


async def _stored_actor(home: AppState, ap_id: str) -> Actor:
    async with home.db() as session:
        actor = await session.scalar(select(Actor).where(Actor.ap_id == ap_id))
    assert actor is not None
    return actor


def _update_of_self(peer: FakePeer, n: int) -> dict[str, Any]:
    """Mastodon's `Update{Person}` after a profile edit: the whole actor document embedded."""
    document = {k: v for k, v in peer.actor_document().items() if k != "@context"}
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": f"{peer.actor_id}#updates/{n}",
        "type": "Update",
        "actor": peer.actor_id,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "object": document,
    }


# -- 1. a forged Accept --------------------------------------------------------------------


async def test_an_accept_from_a_server_that_was_never_asked_does_not_accept_the_follow(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """Only the followed actor may accept: otherwise any server could make alice follow anyone."""
    follow = await _alice_follows_peer(home, peer)
    workers = build_workers(home)

    other = net.add_peer(FakePeer("other.test"))
    forged = _answer(other, "Accept", follow)
    response = await post_signed(net, other, ALICE_INBOX, forged)
    assert response.status_code == 202, response.text  # well-formed and properly signed
    await workers.run_until_idle()

    assert await _follow_states(home) == [(ALICE, peer.actor_id, FollowState.PENDING)]
    state, _ = await _inbox_state(home, forged["id"])
    assert state == WorkState.FAILED
    assert await _collection(net, f"{ALICE}/following") == (0, [])

    # The followed actor's own Accept is what counts.
    genuine = _answer(peer, "Accept", follow)
    assert (await post_signed(net, peer, ALICE_INBOX, genuine)).status_code == 202
    await workers.run_until_idle()
    assert await _inbox_state(home, genuine["id"]) == (WorkState.DONE, None)
    assert await _follow_states(home) == [(ALICE, peer.actor_id, FollowState.ACCEPTED)]
    assert await _collection(net, f"{ALICE}/following") == (1, [peer.actor_id])


# -- 2. a Reject of our Follow -------------------------------------------------------------


async def test_a_rejected_follow_request_is_forgotten_so_it_can_be_asked_again(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """A locked Mastodon account declines: the request must not linger as 'pending' forever."""
    follow = await _alice_follows_peer(home, peer)
    reject = _answer(peer, "Reject", follow)
    assert (await post_signed(net, peer, ALICE_INBOX, reject)).status_code == 202
    await build_workers(home).run_until_idle()

    assert await _inbox_state(home, reject["id"]) == (WorkState.DONE, None)
    assert await _follow_states(home) == []
    assert await _collection(net, f"{ALICE}/following") == (0, [])
    # Nothing stands in the way of asking again (a lingering row would be a ConflictError).
    again = await follow_services.follow(home.db, home.remote_actors, "alice", peer.actor_id)
    assert again.state == FollowState.PENDING


async def test_a_follower_removed_by_the_followed_account_leaves_the_following_list(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """Mastodon's "remove follower" sends Reject{Follow} after an Accept: alice stops following."""
    follow = await _alice_follows_peer(home, peer)
    workers = build_workers(home)
    await post_signed(net, peer, ALICE_INBOX, _answer(peer, "Accept", follow))
    await workers.run_until_idle()
    assert await _collection(net, f"{ALICE}/following") == (1, [peer.actor_id])

    reject = _answer(peer, "Reject", follow)
    assert (await post_signed(net, peer, INBOX, reject)).status_code == 202
    await workers.run_until_idle()

    assert await _inbox_state(home, reject["id"]) == (WorkState.DONE, None)
    assert await _collection(net, f"{ALICE}/following") == (0, [])
    assert await _follow_states(home) == []


# -- 3. Update of a remote Person ----------------------------------------------------------


async def test_a_renamed_remote_account_shows_its_new_name(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """Update{Person} with the same key: the name comes from the handler's refetch, nothing else."""
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    workers = build_workers(home)
    await post_signed(net, peer, f"{GROUP}/inbox", follow_activity(peer, GROUP))
    await workers.run_until_idle()
    assert (await _stored_actor(home, peer.actor_id)).name == "Remote"

    peer.extra["name"] = "Dr Remote"
    update = _update_of_self(peer, 1)
    assert (await post_signed(net, peer, INBOX, update)).status_code == 202
    await workers.run_until_idle()

    assert await _inbox_state(home, update["id"]) == (WorkState.DONE, None)
    assert (await _stored_actor(home, peer.actor_id)).name == "Dr Remote"


async def test_a_remote_account_that_rotates_its_key_and_renames_keeps_federating(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """An Update signed with a key we have not seen yet must verify (refetch), not bounce 401."""
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    await create_group(home.db, home.urls, "wards", name="Wards")
    workers = build_workers(home)
    await post_signed(net, peer, f"{GROUP}/inbox", follow_activity(peer, GROUP))
    await workers.run_until_idle()
    old_keys = peer.keys
    assert (await _stored_actor(home, peer.actor_id)).public_key_pem == old_keys.public_pem

    peer.rotate()
    peer.extra["name"] = "Dr Remote"
    update = _update_of_self(peer, 1)
    response = await post_signed(net, peer, INBOX, update)  # signed with the NEW key
    assert response.status_code == 202, response.text
    await workers.run_until_idle()

    assert await _inbox_state(home, update["id"]) == (WorkState.DONE, None)
    stored = await _stored_actor(home, peer.actor_id)
    assert stored.name == "Dr Remote"
    assert stored.public_key_pem == peer.keys.public_pem

    # The new key is remembered: the next activity verifies without fetching the actor again.
    fetches_before = len([r for r in peer.requests if r.method == "GET"])
    wards = "https://home.test/groups/wards"
    follow = follow_activity(peer, wards, 2)
    assert (await post_signed(net, peer, f"{wards}/inbox", follow)).status_code == 202
    await workers.run_until_idle()
    assert await _inbox_state(home, follow["id"]) == (WorkState.DONE, None)
    assert [(a["type"], a["actor"]) for a in peer.inbox][-1] == ("Accept", wards)
    assert len([r for r in peer.requests if r.method == "GET"]) == fetches_before

    # And the old key no longer speaks for the account.
    thief = FakePeer("peer.test", keys=old_keys)
    stale = follow_activity(peer, GROUP, 3)
    assert (await post_signed(net, thief, INBOX, stale)).status_code == 401
    assert await _inbox_state(home, stale["id"]) == (None, None)


# -- 4. a remote user follows a local person ----------------------------------------------


async def test_a_mastodon_user_follows_a_local_person_and_gets_her_signed_accept(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """People, not only groups, are followed: the Accept must come from her, signed by her key."""
    await create_person(home.db, home.urls, "alice")
    follow = follow_activity(peer, ALICE)
    assert (await post_signed(net, peer, ALICE_INBOX, follow)).status_code == 202
    await build_workers(home).run_until_idle()

    [accept] = peer.inbox
    assert accept["type"] == "Accept"
    assert accept["actor"] == ALICE
    assert accept["object"]["id"] == follow["id"]
    assert accept["object"]["actor"] == peer.actor_id
    assert accept["object"]["object"] == ALICE

    [post] = [r for r in peer.requests if r.method == "POST"]
    assert post.url.path == "/users/remote/inbox"
    assert f'keyId="{ALICE}#main-key"' in post.headers["signature"]
    async with httpx.AsyncClient(transport=net) as client:
        document = (await client.get(ALICE, headers=AS2)).json()
    assert document["publicKey"]["id"] == f"{ALICE}#main-key"
    parsed = parse_signature("POST", post.url.raw_path.decode(), dict(post.headers), post.content)
    assert parsed.key_id == f"{ALICE}#main-key"
    verify(parsed, load_public_key(document["publicKey"]["publicKeyPem"]), datetime.now(UTC))

    assert await _collection(net, f"{ALICE}/followers") == (1, [peer.actor_id])
    assert await _follow_states(home) == [(peer.actor_id, ALICE, FollowState.ACCEPTED)]
