"""Someone here follows a Lemmy community: its FEP-1b12 Announce{Create{Page}} becomes stories.

The announced object is fetched from its own server (only the group signed the Announce), so
a group cannot put words in a member's mouth, and a Delete counts only when the object's own
server says it is gone.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from fedcop.models import Comment, Follow, FollowState, InboxItem, Story, WorkState
from fedcop.services import follows
from fedcop.services.actors import create_person
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, post_signed
from tests.support.stories import community, publish

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


class LemmyServer:
    """A community and a member on lemmy.test, serving the posts it has."""

    def __init__(self) -> None:
        self.community = FakePeer("lemmy.test", username="c", extra={"type": "Group"})
        self.member = FakePeer("lemmy.test", username="alice")
        self.posts: dict[str, dict[str, Any]] = {}
        self.gone: set[str] = set()

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url in self.gone:
            return httpx.Response(410)
        if url in self.posts:
            body = json.dumps(self.posts[url]).encode()
            as2 = {"content-type": "application/activity+json"}
            return httpx.Response(200, content=body, headers=as2)
        fake = self.member if "/alice" in request.url.path else self.community
        return fake.handler(request)

    def page(self, n: int, name: str, in_reply_to: str | None = None) -> dict[str, Any]:
        post = {
            "id": f"https://lemmy.test/post/{n}", "type": "Note" if in_reply_to else "Page",
            "attributedTo": self.member.actor_id, "name": name, "content": f"<p>{name}</p>",
            "to": [self.community.actor_id, PUBLIC], "audience": self.community.actor_id,
        }  # fmt: skip
        if in_reply_to:
            post["inReplyTo"] = in_reply_to
        self.posts[post["id"]] = post
        return post

    def announce(self, kind: str, obj: Any, n: int) -> dict[str, Any]:
        inner = {"id": f"https://lemmy.test/activities/{kind.lower()}/{n}", "type": kind,
                 "actor": self.member.actor_id, "object": obj, "to": [PUBLIC],
                 "cc": [self.community.actor_id], "audience": self.community.actor_id}  # fmt: skip
        return {"id": f"https://lemmy.test/activities/announce/{n}", "type": "Announce",
                "actor": self.community.actor_id, "object": inner, "to": [PUBLIC],
                "cc": [f"{self.community.actor_id}/followers"]}  # fmt: skip


@pytest.fixture
async def lemmy(home: AppState, net: InProcessNetwork) -> LemmyServer:
    server = LemmyServer()
    net.add_handler("lemmy.test", server.handler)
    await create_person(home.db, home.urls, "reader")
    await follows.follow(home.db, home.remote_actors, "reader", server.community.actor_id)
    async with home.db.begin() as session:
        await session.execute(update(Follow).values(state=FollowState.ACCEPTED))
    return server


async def _send(net: InProcessNetwork, home: AppState, server: LemmyServer,
                activity: dict[str, Any]) -> None:  # fmt: skip
    response = await post_signed(net, server.community, "https://home.test/inbox", activity)
    assert response.status_code == 202, response.text
    await build_workers(home).run_until_idle()


async def test_announced_posts_and_comments_are_stored_from_their_origin(
    home: AppState, net: InProcessNetwork, lemmy: LemmyServer
) -> None:
    page = lemmy.page(1, "Our discharge checklist")
    forged = {**page, "name": "Buy cheap pills"}  # the group's embedded copy is not trusted
    await _send(net, home, lemmy, lemmy.announce("Create", forged, 1))
    reply = lemmy.page(2, "Which ward?", in_reply_to=page["id"])
    await _send(net, home, lemmy, lemmy.announce("Create", reply, 2))

    async with home.db() as session:
        story = (await session.scalars(select(Story))).one()
        comment = (await session.scalars(select(Comment))).one()
        group_id = await session.scalar(
            select(Follow.followed_id).where(Follow.state == FollowState.ACCEPTED)
        )  # fmt: skip
    assert story.title == "Our discharge checklist"
    assert story.group_id == group_id
    assert comment.in_reply_to == page["id"]


async def test_a_delete_counts_only_when_the_origin_says_gone(
    home: AppState, net: InProcessNetwork, lemmy: LemmyServer
) -> None:
    page = lemmy.page(1, "Our discharge checklist")
    await _send(net, home, lemmy, lemmy.announce("Create", page, 1))
    await _send(net, home, lemmy, lemmy.announce("Delete", page["id"], 2))
    async with home.db() as session:
        assert (await session.scalars(select(Story))).one().deleted_at is None
    lemmy.gone.add(page["id"])
    await _send(net, home, lemmy, lemmy.announce("Delete", page["id"], 3))
    async with home.db() as session:
        assert (await session.scalars(select(Story))).one().deleted_at is not None


async def test_a_group_nobody_here_follows_is_ignored(
    home: AppState, net: InProcessNetwork, lemmy: LemmyServer
) -> None:
    async with home.db.begin() as session:
        await session.execute(update(Follow).values(state=FollowState.PENDING))
    announce = lemmy.announce("Create", lemmy.page(1, "Hello"), 1)
    await _send(net, home, lemmy, announce)
    async with home.db() as session:
        state = await session.scalar(
            select(InboxItem.state).where(InboxItem.ap_id == announce["id"])
        )
        assert await session.scalar(select(Story)) is None
    assert state == WorkState.IGNORED


@pytest.mark.parametrize(
    ("kind", "inner_object"),
    [
        ("Like", "post"),
        ("Dislike", "post"),
        ("Undo", {"type": "Like", "id": "https://lemmy.test/activities/like/9"}),
        ("Lock", "post"),
        ("Update", {"type": "Group", "id": "https://lemmy.test/c/c", "name": "Renamed"}),
    ],
)
async def test_announced_votes_and_moderation_are_ignored_without_a_fetch(
    home: AppState, net: InProcessNetwork, lemmy: LemmyServer, kind: str, inner_object: Any
) -> None:
    """Lemmy announces every vote to the community's followers
    (https://join-lemmy.org/docs/contributors/05-federation.html): each is recorded as
    ignored, not taken for a boost of the vote's id, fetched, and failed."""
    page = lemmy.page(1, "Our discharge checklist")
    await _send(net, home, lemmy, lemmy.announce("Create", page, 1))
    before = len(net.sent)
    vote = lemmy.announce(kind, page["id"] if inner_object == "post" else inner_object, 2)
    await _send(net, home, lemmy, vote)
    async with home.db() as session:
        state = await session.scalar(select(InboxItem.state).where(InboxItem.ap_id == vote["id"]))
        story = (await session.scalars(select(Story))).one()
    assert state == WorkState.IGNORED
    assert (story.like_count, story.announce_count) == (0, 0)
    assert [r.url for r in net.sent[before:] if r.method == "GET"] == []


async def test_an_announced_delete_of_a_post_here_is_ignored(
    home: AppState, net: InProcessNetwork, lemmy: LemmyServer
) -> None:
    """A local post is never fetched, so it must never look "gone": a group elsewhere cannot
    wipe a story written here by announcing its Delete."""
    await community(home)
    story = await publish(home)
    delete = lemmy.announce("Delete", story.ap_id, 1)
    await _send(net, home, lemmy, delete)
    async with home.db() as session:
        kept = await session.get(Story, story.id)
        state = await session.scalar(select(InboxItem.state).where(InboxItem.ap_id == delete["id"]))
    assert kept is not None
    assert (kept.deleted_at, kept.content) == (None, story.content)
    assert state == WorkState.IGNORED


async def test_a_delete_counts_only_on_404_or_410_not_on_any_refusal(
    home: AppState, net: InProcessNetwork, lemmy: LemmyServer
) -> None:
    """The origin still serves the post, in a form not taken as an object (plain JSON, a
    403): that is not its answer that the post is gone."""
    page = lemmy.page(1, "Our discharge checklist")
    await _send(net, home, lemmy, lemmy.announce("Create", page, 1))
    served = lemmy.handler

    def refusing(request: httpx.Request) -> httpx.Response:
        if str(request.url) == page["id"]:
            return httpx.Response(200, json=page)  # application/json: not AS2
        return served(request)

    net.add_handler("lemmy.test", refusing)
    await _send(net, home, lemmy, lemmy.announce("Delete", page["id"], 2))
    net.add_handler("lemmy.test", lambda r: httpx.Response(403) if str(r.url) == page["id"]
                    else served(r))  # fmt: skip
    await _send(net, home, lemmy, lemmy.announce("Delete", page["id"], 3))
    async with home.db() as session:
        assert (await session.scalars(select(Story))).one().deleted_at is None
