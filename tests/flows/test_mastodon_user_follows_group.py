"""A Mastodon user follows a community group: Follow in, Accept out, signed, and counted."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from fedcop.security.httpsig import load_public_key, parse_signature, verify
from fedcop.services.actors import create_group, create_person
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed

GROUP = "https://home.test/groups/frailty"


async def _group_key(net: InProcessNetwork) -> str:
    async with httpx.AsyncClient(transport=net) as client:
        response = await client.get(GROUP, headers={"accept": "application/activity+json"})
    return str(response.json()["publicKey"]["publicKeyPem"])


async def test_follow_is_accepted_and_the_accept_verifies(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await create_person(home.db, home.urls, "convenor")
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP", owner="convenor")
    follow = follow_activity(peer, GROUP)

    response = await post_signed(net, peer, f"{GROUP}/inbox", follow)
    assert response.status_code == 202
    assert peer.inbox == []  # nothing happens inside the request

    await build_workers(home).run_until_idle()

    [accept] = peer.inbox
    assert accept["type"] == "Accept"
    assert accept["actor"] == GROUP
    assert accept["object"]["id"] == follow["id"]
    assert accept["object"]["actor"] == peer.actor_id
    # the Accept went to the follower's own inbox, signed by the group's key
    [post] = [r for r in peer.requests if r.method == "POST"]
    assert post.url.path == "/users/remote/inbox"
    assert post.headers["content-type"] == "application/activity+json"
    assert 'keyId="https://home.test/groups/frailty#main-key"' in post.headers["signature"]
    parsed = parse_signature("POST", post.url.raw_path.decode(), dict(post.headers), post.content)
    verify(parsed, load_public_key(await _group_key(net)), datetime.now(UTC))

    async with httpx.AsyncClient(transport=net) as client:
        accept_as2 = {"accept": "application/activity+json"}
        root = (await client.get(f"{GROUP}/followers", headers=accept_as2)).json()
        assert root["totalItems"] == 2  # the owner follows its group too
        page = (await client.get(root["first"], headers=accept_as2)).json()
        assert page["orderedItems"] == [peer.actor_id, "https://home.test/users/convenor"]


async def test_gotosocial_sends_follow_to_the_shared_inbox(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """GoToSocial posts everything to the shared inbox; routing is by the object."""
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    response = await post_signed(net, peer, "https://home.test/inbox", follow_activity(peer, GROUP))
    assert response.status_code == 202
    await build_workers(home).run_until_idle()
    assert [a["type"] for a in peer.inbox] == ["Accept"]


async def test_the_same_follow_delivered_twice_is_processed_once(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    follow = follow_activity(peer, GROUP)
    for _ in range(3):
        assert (await post_signed(net, peer, f"{GROUP}/inbox", follow)).status_code == 202
    await build_workers(home).run_until_idle()
    assert [a["type"] for a in peer.inbox] == ["Accept"]


async def test_a_repeated_follow_gets_a_fresh_accept(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """Mastodon re-sends Follow when it never saw our Accept; answer again, count once."""
    await create_group(home.db, home.urls, "frailty", name="Frailty CoP")
    workers = build_workers(home)
    await post_signed(net, peer, f"{GROUP}/inbox", follow_activity(peer, GROUP, 1))
    await workers.run_until_idle()
    await post_signed(net, peer, f"{GROUP}/inbox", follow_activity(peer, GROUP, 2))
    await workers.run_until_idle()
    assert [a["object"]["id"] for a in peer.inbox] == [
        f"{peer.actor_id}#follows/1",
        f"{peer.actor_id}#follows/2",
    ]
    async with httpx.AsyncClient(transport=net) as client:
        root = await client.get(f"{GROUP}/followers", headers={"accept": "application/json"})
    assert root.json()["totalItems"] == 1


async def test_following_someone_who_is_not_here_is_ignored(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    follow = follow_activity(peer, "https://home.test/groups/nobody")
    assert (await post_signed(net, peer, "https://home.test/inbox", follow)).status_code == 202
    await build_workers(home).run_until_idle()
    assert peer.inbox == []
