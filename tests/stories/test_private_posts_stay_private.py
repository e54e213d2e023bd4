"""Posts from elsewhere that are not public are shown here only to whom they were addressed.

Mastodon addresses a followers-only post to the author's followers collection and a
"mentioned people only" post (a direct message) to the mentioned accounts alone (INTEROP §6:
followers-only posts are addressed to `.../followers`). fedcop keeps no private messages: a
post to named people only is not stored, so it can never show in a follower's timeline. And a
reply is shown to everyone who can see its thread, so a reply addressed more narrowly than its
thread is not kept either.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select, update

from fedcop.models import Actor, Comment, Follow, FollowState, InboxItem, Story, WorkState
from fedcop.services import comments, follows, timeline
from fedcop.services.actors import create_person
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, create_activity, post_signed
from tests.support.stories import AS2, GROUP, community, follow_group, join_approved, publish

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
INBOX = "https://home.test/inbox"
CAROL = "https://home.test/users/carol"
BOB = "https://home.test/users/bob"
CONVENOR = "https://home.test/users/convenor"


def _note(peer: FakePeer, n: int, to: list[str], cc: list[str], **more: Any) -> dict[str, Any]:
    return {
        "id": f"https://peer.test/statuses/{n}", "type": "Note", "attributedTo": peer.actor_id,
        "content": f"<p>note {n}</p>", "to": to, "cc": cc, **more,
    }  # fmt: skip


def _mention(href: str) -> dict[str, Any]:
    return {"type": "Mention", "href": href, "name": href.rsplit("/", 1)[1]}


async def _deliver(net: InProcessNetwork, home: AppState, peer: FakePeer, *notes: Any) -> None:
    for n, note in enumerate(notes, start=1):
        response = await post_signed(net, peer, INBOX, create_activity(peer, note, n))
        assert response.status_code == 202
    await build_workers(home).run_until_idle()


async def _home_timeline(home: AppState, username: str) -> list[str]:
    async with home.db() as session:
        viewer = await session.scalar(select(Actor.id).where(Actor.ap_id.endswith(username)))
    assert viewer is not None
    page = await timeline.home(home.db, viewer, None, 50)
    return [entry.story.ap_id for entry in page.entries]


async def _inbox_state(home: AppState, note: dict[str, Any]) -> str | None:
    async with home.db() as session:
        return await session.scalar(
            select(InboxItem.state).where(
                InboxItem.activity["object"]["id"].as_string() == note["id"]
            )
        )


async def test_followers_see_a_followers_only_post_and_nobody_a_direct_message(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    for name in ("carol", "bob"):
        await create_person(home.db, home.urls, name)
        await follows.follow(home.db, home.remote_actors, name, peer.actor_id)
    async with home.db.begin() as session:
        await session.execute(update(Follow).values(state=FollowState.ACCEPTED))
    followers_only = _note(peer, 1, [f"{peer.actor_id}/followers"], [])
    direct = _note(peer, 2, [BOB], [], tag=[_mention(BOB)])
    await _deliver(net, home, peer, followers_only, direct)

    assert await _home_timeline(home, "/carol") == [followers_only["id"]]
    assert await _home_timeline(home, "/bob") == [followers_only["id"]]
    async with home.db() as session:
        kept = (await session.scalars(select(Story.ap_id))).all()
    assert kept == [followers_only["id"]]
    assert await _inbox_state(home, direct) == WorkState.IGNORED


async def test_a_reply_addressed_more_narrowly_than_its_thread_is_not_shown_in_it(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    await follow_group(net, home, peer)
    story = await publish(home)
    followers = f"{peer.actor_id}/followers"
    private = _note(peer, 1, [CONVENOR], [], inReplyTo=story.ap_id, tag=[_mention(CONVENOR)])
    for_followers = _note(peer, 2, [followers], [CONVENOR], inReplyTo=story.ap_id)
    public = _note(peer, 3, [PUBLIC], [followers, CONVENOR], inReplyTo=story.ap_id)
    unlisted = _note(peer, 4, [followers], [PUBLIC], inReplyTo=story.ap_id)
    await _deliver(net, home, peer, private, for_followers, public, unlisted)

    async with home.db() as session:
        comments = (await session.scalars(select(Comment.ap_id).order_by(Comment.id))).all()
        thread = await session.get(Story, story.id)
    assert comments == [public["id"], unlisted["id"]]
    assert thread is not None
    assert thread.comment_count == 2
    assert await _inbox_state(home, private) == WorkState.IGNORED
    async with httpx.AsyncClient(transport=net) as client:
        page = await client.get(story.ap_id, headers={"accept": "text/html"})
    assert "note 3" in page.text
    assert "note 1" not in page.text
    assert "note 2" not in page.text


async def test_in_a_members_only_thread_a_reply_to_the_group_is_kept(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home, visibility="approval")
    await join_approved(net, home, peer)  # asks to join, and is let in
    story = await publish(home, visibility="members")
    to_the_group = _note(peer, 1, [GROUP], [CONVENOR], inReplyTo=story.ap_id)
    to_its_followers = _note(peer, 2, [f"{GROUP}/followers"], [], inReplyTo=story.ap_id)
    to_the_author_alone = _note(peer, 3, [CONVENOR], [], inReplyTo=story.ap_id)
    await _deliver(net, home, peer, to_the_group, to_its_followers, to_the_author_alone)

    async with home.db() as session:
        comments = (await session.scalars(select(Comment.ap_id).order_by(Comment.id))).all()
    assert comments == [to_the_group["id"], to_its_followers["id"]]


async def test_a_post_to_the_group_alone_is_for_its_members_and_one_naming_others_is_not(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    await follow_group(net, home, peer)  # an open group: a member
    to_the_group = _note(peer, 1, [GROUP], [], tag=[_mention(GROUP)])
    to_the_group_and_carol = _note(peer, 2, [GROUP, CAROL], [], tag=[_mention(GROUP)])
    await _deliver(net, home, peer, to_the_group, to_the_group_and_carol)

    async with home.db() as session:
        kept = (await session.execute(select(Story.ap_id, Story.visibility))).all()
    assert [tuple(row) for row in kept] == [(to_the_group["id"], "members")]
    assert await _inbox_state(home, to_the_group_and_carol) == WorkState.IGNORED


async def test_a_reply_here_to_a_followers_only_post_is_not_made_public(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await create_person(home.db, home.urls, "carol")
    await follows.follow(home.db, home.remote_actors, "carol", peer.actor_id)
    async with home.db.begin() as session:
        await session.execute(update(Follow).values(state=FollowState.ACCEPTED))
    post = _note(peer, 1, [f"{peer.actor_id}/followers"], [])
    await _deliver(net, home, peer, post)

    await comments.comment(home.db, home.urls, "carol", post["id"], "Thinking of you")
    await build_workers(home).run_until_idle()

    [create] = [a for a in peer.inbox if a["type"] == "Create"]
    assert create["object"]["inReplyTo"] == post["id"]
    assert (create["to"], create["cc"]) == ([peer.actor_id], [])
    assert PUBLIC not in str(create)
    async with httpx.AsyncClient(transport=net) as client:
        first = (await client.get(f"{CAROL}/outbox", headers=AS2)).json()["first"]
        assert "Thinking of you" not in (await client.get(first, headers=AS2)).text
