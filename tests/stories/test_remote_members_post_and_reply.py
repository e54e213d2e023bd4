"""Remote members post to the group (Lemmy-shaped), reply in threads (Mastodon-shaped), react."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from fedcop.models import Comment, InboxItem, Story, WorkState
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, create_activity, post_signed
from tests.support.stories import GROUP, community, follow_group, publish

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def _lemmy_page(peer: FakePeer, n: int = 1) -> dict[str, Any]:
    return {
        "id": f"https://peer.test/post/{n}", "type": "Page", "attributedTo": peer.actor_id,
        "name": "Our discharge checklist", "content": "<p>It <script>x()</script>works.</p>",
        "to": [GROUP, PUBLIC], "cc": [], "audience": GROUP, "mediaType": "text/html",
        "published": "2026-11-26T08:00:00Z",
    }  # fmt: skip


async def test_a_member_posts_to_the_group_and_every_follower_sees_it(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    other = net.add_peer(FakePeer("other.test"))
    await follow_group(net, home, peer)  # following an open group makes the peer a member
    await follow_group(net, home, other)

    page = _lemmy_page(peer)
    assert (
        await post_signed(net, peer, f"{GROUP}/inbox", create_activity(peer, page))
    ).status_code == 202
    await build_workers(home).run_until_idle()

    async with home.db() as session:
        story = (await session.scalars(select(Story).where(Story.ap_id == page["id"]))).one()
    assert story.title == "Our discharge checklist"
    assert "<script" not in story.content
    assert [a["object"] for a in other.inbox if a["type"] == "Announce"] == [page["id"]]


async def test_a_non_member_cannot_post_through_the_group(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home, visibility="approval")
    other = net.add_peer(FakePeer("other.test"))
    await follow_group(net, home, other)  # pending: not a member
    page = _lemmy_page(peer)
    await post_signed(net, peer, f"{GROUP}/inbox", create_activity(peer, page))
    await build_workers(home).run_until_idle()
    assert not [a for a in other.inbox if a["type"] == "Announce"]
    async with home.db() as session:
        assert await session.scalar(select(Story).where(Story.ap_id == page["id"])) is None


async def test_a_mastodon_reply_lands_in_the_thread_and_is_not_boosted(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    await follow_group(net, home, peer)
    story = await publish(home)
    note = {
        "id": "https://peer.test/statuses/9", "type": "Note", "attributedTo": peer.actor_id,
        "inReplyTo": story.ap_id, "content": "<p>We tried this too!</p>",
        "to": [PUBLIC], "cc": ["https://home.test/users/convenor"],
        "tag": [{"type": "Mention", "href": "https://home.test/users/convenor"}],
    }  # fmt: skip
    await post_signed(net, peer, "https://home.test/inbox", create_activity(peer, note))
    announces_before = len([a for a in peer.inbox if a["type"] == "Announce"])
    await build_workers(home).run_until_idle()

    async with home.db() as session:
        comment = (await session.scalars(select(Comment))).one()
        refreshed = await session.get(Story, story.id)
    assert comment.in_reply_to == story.ap_id
    assert refreshed is not None
    assert refreshed.comment_count == 1
    assert len([a for a in peer.inbox if a["type"] == "Announce"]) == announces_before
    async with httpx.AsyncClient(transport=net) as client:
        page = await client.get(story.ap_id, headers={"accept": "text/html"})
    assert "We tried this too!" in page.text


async def test_a_create_cannot_take_over_someone_elses_post(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """CVE-2024-37903: a second Create reusing an id owned by another actor is refused."""
    await community(home)
    await follow_group(net, home, peer)
    page = _lemmy_page(peer)
    await post_signed(net, peer, f"{GROUP}/inbox", create_activity(peer, page))
    await build_workers(home).run_until_idle()
    impostor = FakePeer("peer.test", username="mallory")
    net.add_handler(
        "peer.test", lambda r: impostor.handler(r) if "mallory" in r.url.path else peer.handler(r)
    )
    await follow_group(net, home, impostor)  # a member, so only the ownership rule can stop it
    stolen = {**page, "attributedTo": impostor.actor_id, "name": "Hijacked"}
    await post_signed(net, impostor, f"{GROUP}/inbox", create_activity(impostor, stolen, 2))
    await build_workers(home).run_until_idle()
    async with home.db() as session:
        story = (await session.scalars(select(Story).where(Story.ap_id == page["id"]))).one()
        outcome = await session.scalar(
            select(InboxItem.state).where(InboxItem.ap_id == f"{impostor.actor_id}#create/2")
        )
    assert story.title == "Our discharge checklist"
    assert outcome == WorkState.FAILED


async def test_likes_and_shares_count_and_undo(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    story = await publish(home)
    like = {"id": f"{peer.actor_id}#likes/1", "type": "Like", "actor": peer.actor_id,
            "object": story.ap_id}  # fmt: skip
    share = {"id": f"{peer.actor_id}#announces/1", "type": "Announce", "actor": peer.actor_id,
             "object": story.ap_id, "to": [PUBLIC]}  # fmt: skip
    for activity in (like, like, share):
        await post_signed(net, peer, "https://home.test/inbox", activity)
    await build_workers(home).run_until_idle()
    async with home.db() as session:
        counted = await session.get(Story, story.id)
        assert counted is not None
        # one like (the repeat counted once); two shares: the group's own boost and the peer's
        assert (counted.like_count, counted.announce_count) == (1, 2)

    undo = {"id": f"{peer.actor_id}#undo/1", "type": "Undo", "actor": peer.actor_id, "object": like}
    await post_signed(net, peer, "https://home.test/inbox", undo)
    await build_workers(home).run_until_idle()
    async with home.db() as session:
        counted = await session.get(Story, story.id)
        assert counted is not None
        assert counted.like_count == 0


async def test_mentioning_the_group_from_mastodon_posts_to_it(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """Guppe-style: a member's public post that mentions @frailty@home.test is a group story."""
    await community(home)
    other = net.add_peer(FakePeer("other.test"))
    await follow_group(net, home, peer)
    await follow_group(net, home, other)
    note = {
        "id": "https://peer.test/statuses/42", "type": "Note", "attributedTo": peer.actor_id,
        "content": '<p><a href="https://home.test/groups/frailty">@frailty</a> our new leaflet</p>',
        "to": [PUBLIC], "cc": [f"{peer.actor_id}/followers", GROUP],
        "tag": [{"type": "Mention", "href": GROUP, "name": "@frailty@home.test"}],
    }  # fmt: skip
    await post_signed(net, peer, "https://home.test/inbox", create_activity(peer, note))
    await build_workers(home).run_until_idle()
    assert [a["object"] for a in other.inbox if a["type"] == "Announce"] == [note["id"]]
