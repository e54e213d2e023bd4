"""Follow relationships and the activities that answer them, inside a caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap import activities
from fedcop.federation.outbox import Audience, publish
from fedcop.models import Actor, Follow, FollowState, utcnow


async def find_follow(
    session: AsyncSession, *, ap_id: str | None, follower_id: int, followed_id: int
) -> Follow | None:
    """By the Follow's id, or else by the pair (some servers answer with a bare id, some with
    a re-serialised Follow)."""
    conditions: list[ColumnElement[bool]] = [
        and_(Follow.follower_id == follower_id, Follow.followed_id == followed_id)
    ]
    if ap_id is not None:
        conditions.append(Follow.ap_id == ap_id)
    query = select(Follow).where(or_(*conditions)).order_by(Follow.id)
    return (await session.scalars(query)).first()


async def accept(session: AsyncSession, follow: Follow, follower: Actor, followed: Actor) -> None:
    """Mark accepted and send `Accept{Follow}` to the follower's own inbox."""
    follow.state = FollowState.ACCEPTED
    follow.accepted_at = utcnow()
    response = activities.respond_to_follow(
        "Accept", followed.ap_id, _follow_of(follow, follower, followed)
    )
    await publish(session, followed, response, Audience(actors=[follower], shared_inboxes=False))


async def reject(session: AsyncSession, follow: Follow, follower: Actor, followed: Actor) -> None:
    """Remove the follow and send `Reject{Follow}` to the follower."""
    response = activities.respond_to_follow(
        "Reject", followed.ap_id, _follow_of(follow, follower, followed)
    )
    await session.execute(delete(Follow).where(Follow.id == follow.id))
    await publish(session, followed, response, Audience(actors=[follower], shared_inboxes=False))


async def remove_all_for(session: AsyncSession, actor: Actor) -> None:
    await session.execute(
        delete(Follow).where(or_(Follow.follower_id == actor.id, Follow.followed_id == actor.id))
    )


def _follow_of(follow: Follow, follower: Actor, followed: Actor) -> dict[str, Any]:
    return activities.follow(follower.ap_id, followed.ap_id, follow.ap_id)
