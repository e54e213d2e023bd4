"""Dispatch outcomes: an activity fedcop has no handler for is recorded as ignored, not an
error; and an activity processed a second time (a crash between a handler's commit and the
row's "done" mark re-runs it) changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from fedcop.models import (
    Delivery,
    Follow,
    InboxItem,
    OutboxActivity,
    Reaction,
    Story,
    WorkState,
    utcnow,
)
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, create_activity, post_signed
from tests.support.stories import GROUP, community, follow_group

INBOX = "https://home.test/inbox"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


async def test_activities_without_a_handler_are_recorded_as_ignored_with_the_reason(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    await follow_group(net, home, peer)
    react = {"id": f"{peer.actor_id}#react/1", "type": "EmojiReact", "actor": peer.actor_id,
             "object": GROUP, "content": "🩺"}  # fmt: skip
    move = {"id": f"{peer.actor_id}#move/1", "type": "Move", "actor": peer.actor_id,
            "object": peer.actor_id, "target": "https://elsewhere.test/users/bea"}  # fmt: skip
    for activity in (react, move):
        assert (await post_signed(net, peer, INBOX, activity)).status_code == 202
    await build_workers(home).run_until_idle()
    async with home.db() as session:
        rows = (
            await session.execute(
                select(InboxItem.ap_id, InboxItem.state, InboxItem.last_error)
                .where(InboxItem.ap_id.in_([react["id"], move["id"]]))
                .order_by(InboxItem.ap_id)
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        (move["id"], WorkState.IGNORED, "no handler for Move(id)"),
        (react["id"], WorkState.IGNORED, "no handler for EmojiReact(id)"),
    ]


async def _snapshot(home: AppState, story_id: str) -> dict[str, Any]:
    async with home.db() as session:

        async def count(model: Any) -> int:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

        story = (await session.scalars(select(Story).where(Story.ap_id == story_id))).one()
        return {
            "follows": await count(Follow),
            "stories": await count(Story),
            "reactions": await count(Reaction),
            "announces": await session.scalar(
                select(func.count())
                .select_from(OutboxActivity)
                .where(OutboxActivity.type == "Announce")
            ),
            "deliveries of announces": await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .join(OutboxActivity, OutboxActivity.id == Delivery.activity_id)
                .where(OutboxActivity.type == "Announce")
            ),
            "likes": story.like_count,
            "replies": story.comment_count,
        }


async def test_processing_every_activity_again_changes_nothing(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    other = net.add_peer(FakePeer("other.test"))
    await follow_group(net, home, peer)
    await follow_group(net, home, other)
    page: dict[str, Any] = {
        "id": "https://peer.test/post/1", "type": "Page", "attributedTo": peer.actor_id,
        "name": "Handover", "content": "<p>SBAR works.</p>", "to": [GROUP, PUBLIC],
        "audience": GROUP,
    }  # fmt: skip
    reply = {"id": "https://other.test/statuses/1", "type": "Note",
             "attributedTo": other.actor_id, "inReplyTo": page["id"],
             "content": "<p>Agreed</p>", "to": [PUBLIC], "cc": [GROUP]}  # fmt: skip
    like = {"id": f"{other.actor_id}#likes/1", "type": "Like", "actor": other.actor_id,
            "object": page["id"]}  # fmt: skip
    await post_signed(net, peer, INBOX, create_activity(peer, page))
    await build_workers(home).run_until_idle()
    await post_signed(net, other, INBOX, create_activity(other, reply))
    await post_signed(net, other, INBOX, like)
    await build_workers(home).run_until_idle()
    before = await _snapshot(home, page["id"])
    assert (before["likes"], before["replies"], before["announces"]) == (1, 1, 1)

    async with home.db.begin() as session:  # as if every row's "done" mark had been lost
        await session.execute(
            update(InboxItem).values(
                state=WorkState.PENDING,
                processed_at=None,
                next_attempt_at=utcnow() - timedelta(seconds=1),
            )
        )
    await build_workers(home).run_until_idle()

    assert await _snapshot(home, page["id"]) == before
    async with home.db() as session:
        states = set((await session.scalars(select(InboxItem.state))).all())
    assert states <= {WorkState.DONE, WorkState.IGNORED}
