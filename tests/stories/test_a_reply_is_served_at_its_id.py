"""A reply written here answers at its id: the Note its followers were sent, for servers
that look it up to thread a reply to it; a browser is taken to it in the story's thread."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from fedcop.ap.context import PUBLIC
from fedcop.federation.client import is_activitystreams_type
from fedcop.models import Comment, Story
from fedcop.services import comments
from fedcop.services import stories as story_services
from fedcop.services.actors import create_person
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity, post_signed
from tests.support.stories import AS2, GROUP, community, join_approved, publish

CONVENOR = "https://home.test/users/convenor"
BOB = "https://home.test/users/bob"


async def _get(net: InProcessNetwork, url: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=net) as client:
        return await client.get(url, headers=headers)


async def _story_bob_can_reply_to(home: AppState) -> Story:
    await community(home)
    await create_person(home.db, home.urls, "bob")
    return await publish(home)


async def _mark(home: AppState, comment: Comment, **values: object) -> None:
    async with home.db.begin() as session:
        await session.execute(update(Comment).where(Comment.id == comment.id).values(**values))


async def test_a_reply_is_the_note_its_followers_were_sent(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    story = await _story_bob_can_reply_to(home)
    follow = follow_activity(peer, BOB)  # bob's follower: the reply is sent to its server
    assert (await post_signed(net, peer, f"{BOB}/inbox", follow)).status_code == 202
    await build_workers(home).run_until_idle()
    reply = await comments.comment(home.db, home.urls, "bob", story.ap_id, "We do this *too*.")
    await build_workers(home).run_until_idle()

    response = await _get(net, reply.ap_id, AS2)
    assert response.status_code == 200
    assert is_activitystreams_type(response.headers["content-type"])
    served = response.json()
    [sent] = [a["object"] for a in peer.inbox if a["type"] == "Create"]
    served.pop("@context")
    sent.pop("@context", None)
    assert served == sent
    assert served["id"] == reply.ap_id
    assert served["inReplyTo"] == story.ap_id
    assert served["to"] == [PUBLIC]
    assert set(served["cc"]) == {f"{BOB}/followers", CONVENOR, GROUP}
    # the story's author is mentioned, so Mastodon notifies them; the group is not a person
    assert served["tag"] == [{"type": "Mention", "href": CONVENOR, "name": "@convenor@home.test"}]


async def test_a_browser_is_taken_to_the_reply_in_its_thread(
    home: AppState, net: InProcessNetwork
) -> None:
    story = await _story_bob_can_reply_to(home)
    reply = await comments.comment(home.db, home.urls, "bob", story.ap_id, "Thank you")

    response = await _get(net, reply.ap_id, {"accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == f"{story.ap_id}#comment-{reply.id}"
    page = await _get(net, story.ap_id, {"accept": "text/html"})
    assert f'id="comment-{reply.id}"' in page.text


async def test_a_reply_in_a_members_only_thread_is_for_members_only(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home, visibility="private")
    await join_approved(net, home, peer)  # asks to join, and is let in
    story = await publish(home, visibility="members")
    reply = await comments.comment(home.db, home.urls, "convenor", story.ap_id, "Ward notes")
    outsider = net.add_peer(FakePeer("outsider.test"))

    assert (await _get(net, reply.ap_id, AS2)).status_code == 404
    assert (
        await _get(net, reply.ap_id, outsider.signed_headers("GET", reply.ap_id))
    ).status_code == 404
    member = await _get(net, reply.ap_id, peer.signed_headers("GET", reply.ap_id))
    assert member.status_code == 200
    assert member.json()["to"] == [GROUP]  # never Public, never the author's followers
    assert member.json()["cc"] == []
    assert (await _get(net, reply.ap_id, {"accept": "text/html"})).status_code == 404


async def test_a_deleted_reply_or_thread_answers_410_with_a_tombstone(
    home: AppState, net: InProcessNetwork
) -> None:
    story = await _story_bob_can_reply_to(home)
    first = await comments.comment(home.db, home.urls, "bob", story.ap_id, "One")
    second = await comments.comment(home.db, home.urls, "bob", story.ap_id, "Two")
    await _mark(home, first, deleted_at=first.published_at)
    gone = await _get(net, first.ap_id, AS2)
    assert gone.status_code == 410
    assert gone.json()["type"] == "Tombstone"
    assert gone.json()["formerType"] == "Note"
    assert (await _get(net, second.ap_id, AS2)).status_code == 200

    await story_services.delete(home.db, home.urls, story.ap_id, by="convenor")
    assert (await _get(net, second.ap_id, AS2)).status_code == 410
    assert (await _get(net, second.ap_id, {"accept": "text/html"})).status_code == 410


async def test_an_unknown_or_removed_reply_is_not_found(
    home: AppState, net: InProcessNetwork
) -> None:
    story = await _story_bob_can_reply_to(home)
    reply = await comments.comment(home.db, home.urls, "bob", story.ap_id, "Off topic")
    assert (await _get(net, "https://home.test/comments/0123456789abcdef", AS2)).status_code == 404
    await _mark(home, reply, removed_at=reply.published_at)
    assert (await _get(net, reply.ap_id, AS2)).status_code == 404


async def test_a_deleted_members_only_thread_is_not_even_known_outside(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    """A 410 says something was there: only those who could see it learn that it is gone."""
    await community(home, visibility="private")
    await join_approved(net, home, peer)  # asks to join, and is let in
    story = await publish(home, visibility="members")
    reply = await comments.comment(home.db, home.urls, "convenor", story.ap_id, "Ward notes")
    await story_services.delete(home.db, home.urls, story.ap_id, by="convenor")
    for url in (story.ap_id, reply.ap_id):
        assert (await _get(net, url, AS2)).status_code == 404
        assert (await _get(net, url, {"accept": "text/html"})).status_code == 404
        assert (await _get(net, url, peer.signed_headers("GET", url))).status_code == 410
