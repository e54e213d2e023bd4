"""Follow relationships and the activities that answer them, inside a caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap import activities
from fedcop.federation.outbox import Audience, publish
from fedcop.models import (
    Actor,
    ActorType,
    Follow,
    FollowState,
    GroupMember,
    GroupRole,
    MembershipState,
    utcnow,
)


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
    """Mark accepted and send `Accept{Follow}` to the follower's own inbox.

    Following a group is how remote people join it: an accepted follower becomes a member.
    """
    follow.state = FollowState.ACCEPTED
    follow.accepted_at = utcnow()
    if followed.type == ActorType.GROUP and not follower.local:
        await _add_member(session, followed, follower)
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


async def follow_locally(session: AsyncSession, person: Actor, group: Actor) -> None:
    """A local person follows a local group directly (no activity needs to travel)."""
    exists = await session.scalar(
        select(Follow).where(Follow.follower_id == person.id, Follow.followed_id == group.id)
    )
    if exists is None:
        session.add(
            Follow(
                ap_id=activities.new_activity_id(person.ap_id, "follow"),
                follower_id=person.id,
                followed_id=group.id,
                state=FollowState.ACCEPTED,
                accepted_at=utcnow(),
            )
        )


async def end_membership(session: AsyncSession, group: Actor, member: Actor) -> None:
    """An unfollow ends a remote membership (owners and moderators keep their role)."""
    await session.execute(
        delete(GroupMember).where(
            GroupMember.group_id == group.id,
            GroupMember.actor_id == member.id,
            GroupMember.role == GroupRole.MEMBER,
        )
    )


async def _add_member(session: AsyncSession, group: Actor, member: Actor) -> None:
    if await session.get(GroupMember, (group.id, member.id)) is None:
        session.add(
            GroupMember(group_id=group.id, actor_id=member.id, state=MembershipState.ACTIVE)
        )


async def refuse(
    session: AsyncSession, follow_activity: dict[str, Any], follower: Actor, followed: Actor
) -> None:
    """`Reject` a Follow that was never recorded (the follower is blocked by the group)."""
    response = activities.respond_to_follow("Reject", followed.ap_id, follow_activity)
    await publish(session, followed, response, Audience(actors=[follower], shared_inboxes=False))


async def remove_all_for(session: AsyncSession, actor: Actor) -> None:
    await session.execute(
        delete(Follow).where(or_(Follow.follower_id == actor.id, Follow.followed_id == actor.id))
    )


def _follow_of(follow: Follow, follower: Actor, followed: Actor) -> dict[str, Any]:
    return activities.follow(follower.ap_id, followed.ap_id, follow.ap_id)
