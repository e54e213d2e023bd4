"""A remote member deletes their account: their stories, replies, likes and membership go too.

Mastodon sends `Delete` with the actor as its object to every server that knows the account
and removes the account's statuses itself (DeleteAccountService); the issue asks the same of
fedcop: "Delete (actor: remove their follows and content)".
"""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from fedcop.models import Actor, Comment, GroupMember, Reaction, Story
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, create_activity, post_signed
from tests.support.stories import AS2, GROUP, community, follow_group, publish

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
INBOX = "https://home.test/inbox"


async def test_a_deleted_account_takes_its_posts_reactions_and_membership_with_it(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    other = net.add_peer(FakePeer("other.test"))
    await follow_group(net, home, peer)  # an open group: following makes the peer a member
    await follow_group(net, home, other)
    convenors = await publish(home)
    page = {
        "id": "https://peer.test/post/1", "type": "Page", "attributedTo": peer.actor_id,
        "name": "Our discharge checklist", "content": "<p>It works.</p>",
        "to": [GROUP, PUBLIC], "cc": [], "audience": GROUP,
    }  # fmt: skip
    reply = {
        "id": "https://peer.test/statuses/2", "type": "Note", "attributedTo": peer.actor_id,
        "inReplyTo": convenors.ap_id, "content": "<p>We tried this too!</p>",
        "to": [PUBLIC], "cc": [GROUP],
    }  # fmt: skip
    like = {"id": f"{peer.actor_id}#likes/1", "type": "Like", "actor": peer.actor_id,
            "object": convenors.ap_id}  # fmt: skip
    for activity in (create_activity(peer, page, 1), create_activity(peer, reply, 2), like):
        assert (await post_signed(net, peer, INBOX, activity)).status_code == 202
    await build_workers(home).run_until_idle()
    async with home.db() as session:
        before = await session.get(Story, convenors.id)
        assert before is not None
        assert (before.comment_count, before.like_count) == (1, 1)
    assert [a["object"] for a in other.inbox if a["type"] == "Announce"] == [
        convenors.ap_id,
        page["id"],
    ]

    gone = {"id": f"{peer.actor_id}#delete", "type": "Delete", "actor": peer.actor_id,
            "object": peer.actor_id, "to": [PUBLIC]}  # fmt: skip
    assert (await post_signed(net, peer, INBOX, gone)).status_code == 202
    await build_workers(home).run_until_idle()

    async with home.db() as session:
        story = (await session.scalars(select(Story).where(Story.ap_id == page["id"]))).one()
        comment = (await session.scalars(select(Comment))).one()
        thread = await session.get(Story, convenors.id)
        peers_reactions = await session.scalar(
            select(func.count())
            .select_from(Reaction)
            .join(Actor, Actor.id == Reaction.actor_id)
            .where(Actor.ap_id == peer.actor_id)
        )
        boosts_of_the_story = await session.scalar(
            select(func.count()).select_from(Reaction).where(Reaction.object_ap_id == page["id"])
        )
        members = (
            await session.scalars(
                select(Actor.ap_id).join(GroupMember, GroupMember.actor_id == Actor.id)
            )
        ).all()
    assert story.deleted_at is not None
    assert story.content == ""
    assert comment.deleted_at is not None
    assert comment.content == ""
    assert thread is not None
    assert (thread.comment_count, thread.like_count) == (0, 0)
    assert peers_reactions == 0  # the like is gone, not only uncounted
    assert boosts_of_the_story == 0  # and the group's boost of the deleted story with it
    assert sorted(members) == sorted([other.actor_id, "https://home.test/users/convenor"])
    # The group takes back its boost, so Mastodon followers drop the story from timelines.
    undone = [a["object"]["object"] for a in other.inbox if a["type"] == "Undo"]
    assert undone == [page["id"]]
    async with httpx.AsyncClient(transport=net) as client:
        shown = await client.get(convenors.ap_id, headers={"accept": "text/html"})
    assert "We tried this too!" not in shown.text
    async with httpx.AsyncClient(transport=net) as client:  # the group's boost left its outbox
        first = (await client.get(f"{GROUP}/outbox", headers=AS2)).json()["first"]
        assert page["id"] not in (await client.get(first, headers=AS2)).text
