"""Who may see a story or comment. Refusals look like absence (404), never like a locked
door (403), so a private group's content does not even reveal that it exists."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.federation.groups import is_member
from fedcop.models import Actor, Follow, FollowState, GroupVisibility, Story, Visibility


async def may_see(session: AsyncSession, story: Story, viewer_id: int | None) -> bool:
    if story.removed_at is not None:
        return False
    group = await session.get(Actor, story.group_id) if story.group_id else None
    private_group = group is not None and group.group_visibility == GroupVisibility.PRIVATE
    if story.visibility in (Visibility.PUBLIC, Visibility.UNLISTED) and not private_group:
        return True
    if viewer_id is None:
        return False
    if viewer_id == story.author_id:
        return True
    if group is not None and await is_member(session, group, viewer_id):
        return True
    if story.visibility == Visibility.FOLLOWERS:
        return await _follows(session, viewer_id, story.author_id)
    return False


async def _follows(session: AsyncSession, follower_id: int, followed_id: int) -> bool:
    found = await session.scalar(
        select(Follow.id).where(
            Follow.follower_id == follower_id,
            Follow.followed_id == followed_id,
            Follow.state == FollowState.ACCEPTED,
        )
    )
    return found is not None
