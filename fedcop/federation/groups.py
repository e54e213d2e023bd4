"""Group membership rules shared by inbound handlers and local use cases."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.models import Actor, Follow, FollowState, GroupBlock, GroupMember, MembershipState


async def is_blocked(session: AsyncSession, group: Actor, actor: Actor) -> bool:
    return await session.get(GroupBlock, (group.id, actor.id)) is not None


async def is_member(session: AsyncSession, group: Actor, actor_id: int) -> bool:
    member = await session.get(GroupMember, (group.id, actor_id))
    return member is not None and member.state == MembershipState.ACTIVE


async def may_post(session: AsyncSession, group: Actor, author: Actor) -> bool:
    """Members post by default; a group may open posting to every accepted follower.

    For a group on another server, all we can know is whether the author follows it (its
    server applies its own rules when the story arrives).
    """
    if await is_blocked(session, group, author):
        return False
    if group.local and await is_member(session, group, author.id):
        return True
    if not group.local:
        return await _follows(session, author, group)
    if group.posting_policy != "followers":
        return False
    return await _follows(session, author, group)


async def _follows(session: AsyncSession, author: Actor, group: Actor) -> bool:
    follow = await session.scalar(
        select(Follow.id).where(
            Follow.follower_id == author.id,
            Follow.followed_id == group.id,
            Follow.state == FollowState.ACCEPTED,
        )
    )
    return follow is not None
