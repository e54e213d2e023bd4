"""Who may see a story or comment. Refusals look like absence (404), never like a locked
door (403), so a private group's content does not even reveal that it exists."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.federation.groups import is_member
from fedcop.models import (
    SEEN_BY_ANYONE,
    Actor,
    Comment,
    Follow,
    FollowState,
    GroupVisibility,
    Story,
    Visibility,
)


async def find_post(session: AsyncSession, ap_id: str) -> Story | Comment | None:
    """The story or comment with this id, deleted or not; None if it is not stored here."""
    story = await session.scalar(select(Story).where(Story.ap_id == ap_id))
    if story is not None:
        return story
    comment: Comment | None = await session.scalar(select(Comment).where(Comment.ap_id == ap_id))
    return comment


async def thread_of(session: AsyncSession, ap_id: str) -> Story | None:
    """The story a post belongs to: itself, or a comment's story."""
    post = await find_post(session, ap_id)
    if isinstance(post, Comment):
        return await session.get(Story, post.story_id)
    return post


async def may_see(session: AsyncSession, story: Story, viewer_id: int | None) -> bool:
    if story.removed_at is not None:
        return False
    group = await session.get(Actor, story.group_id) if story.group_id else None
    if open_to_all(story, group):
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


def open_to_all(story: Story, group: Actor | None) -> bool:
    """Whether anyone may see the story (`group`: its group): public or unlisted, and not in
    a private group."""
    private_group = group is not None and group.group_visibility == GroupVisibility.PRIVATE
    return story.visibility in SEEN_BY_ANYONE and not private_group


async def _follows(session: AsyncSession, follower_id: int, followed_id: int) -> bool:
    found = await session.scalar(
        select(Follow.id).where(
            Follow.follower_id == follower_id,
            Follow.followed_id == followed_id,
            Follow.state == FollowState.ACCEPTED,
        )
    )
    return found is not None
