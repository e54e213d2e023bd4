"""What a local person can read: their home timeline, a group's stories, one story, and the
directory of groups.

Every story passes `federation.access.may_see` before it is shown, the same rule the
ActivityPub routes apply, so the API can never show more than the story's own URL would.
Lists page by keyset on the row id, newest first: stable under inserts, and cheap at any depth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.db import SessionMaker
from fedcop.errors import NotFoundError
from fedcop.federation.access import may_see
from fedcop.models import (
    Actor,
    ActorType,
    Follow,
    FollowState,
    GroupMember,
    GroupVisibility,
    MembershipState,
    Story,
)
from fedcop.services.groups import local_group

MAX_LIMIT = 40
# Rows read per page at most, visible or not: bounds the work a page of mostly hidden
# stories can cost. The cursor then resumes where the scan stopped.
SCAN_FACTOR = 5


@dataclass(frozen=True, slots=True)
class StoryEntry:
    story: Story
    author: Actor
    group: Actor | None


@dataclass(frozen=True, slots=True)
class StoryPage:
    entries: list[StoryEntry]
    next_max_id: int | None  # pass as max_id for the next (older) page; None at the end


@dataclass(frozen=True, slots=True)
class GroupEntry:
    group: Actor
    member_count: int
    membership: GroupMember | None  # the viewer's, in any state


async def home(db: SessionMaker, viewer_id: int, max_id: int | None, limit: int) -> StoryPage:
    """Stories by actors and groups the viewer follows, in groups they belong to, and their own."""
    followed = select(Follow.followed_id).where(
        Follow.follower_id == viewer_id, Follow.state == FollowState.ACCEPTED
    )
    query = _live_stories().where(
        or_(
            Story.author_id == viewer_id,
            Story.author_id.in_(followed),
            Story.group_id.in_(followed),
            Story.group_id.in_(_groups_of(viewer_id)),
        )
    )
    async with db() as session:
        return await _page(session, query, viewer_id, max_id, limit)


async def group_stories(
    db: SessionMaker, group_name: str, viewer_id: int, max_id: int | None, limit: int
) -> StoryPage:
    async with db() as session:
        group = await visible_group(session, group_name, viewer_id)
        query = _live_stories().where(Story.group_id == group.id)
        return await _page(session, query, viewer_id, max_id, limit)


async def story(db: SessionMaker, story_id: int, viewer_id: int) -> StoryEntry:
    async with db() as session:
        found = await session.get(Story, story_id)
        if found is None or found.deleted_at is not None:
            raise NotFoundError(f"no story {story_id} here")
        if not await may_see(session, found, viewer_id):
            raise NotFoundError(f"no story {story_id} here")  # hidden looks like absent
        [entry] = await _entries(session, [found])
        return entry


async def groups(db: SessionMaker, viewer_id: int) -> list[GroupEntry]:
    """Local groups: every one that is not private, and the private ones the viewer is in."""
    query = (
        select(Actor)
        .where(
            Actor.local,
            Actor.type == ActorType.GROUP,
            Actor.deleted_at.is_(None),
            or_(
                Actor.group_visibility != GroupVisibility.PRIVATE,
                Actor.id.in_(_groups_of(viewer_id)),
            ),
        )
        .order_by(Actor.username)
    )
    async with db() as session:
        found = (await session.scalars(query)).all()
        return await _group_entries(session, found, viewer_id)


async def group(db: SessionMaker, group_name: str, viewer_id: int) -> GroupEntry:
    async with db() as session:
        found = await visible_group(session, group_name, viewer_id)
        [entry] = await _group_entries(session, [found], viewer_id)
        return entry


async def visible_group(session: AsyncSession, group_name: str, viewer_id: int) -> Actor:
    """A local group, unless it is private and the viewer is not an active member: then, as
    with stories, NotFound, so a private group does not even reveal that it exists."""
    found = await local_group(session, group_name)
    if found.group_visibility == GroupVisibility.PRIVATE:
        member = await session.get(GroupMember, (found.id, viewer_id))
        if member is None or member.state != MembershipState.ACTIVE:
            raise NotFoundError(f"no community group named {group_name!r} here")
    return found


def _live_stories() -> Select[Story]:
    return select(Story).where(Story.deleted_at.is_(None), Story.removed_at.is_(None))


def _groups_of(viewer_id: int) -> Select[int]:
    return select(GroupMember.group_id).where(
        GroupMember.actor_id == viewer_id, GroupMember.state == MembershipState.ACTIVE
    )


async def _page(
    session: AsyncSession, query: Select[Story], viewer_id: int, max_id: int | None, limit: int
) -> StoryPage:
    """Up to `limit` visible stories older than `max_id`, reading at most SCAN_FACTOR chunks."""
    limit = max(1, min(limit, MAX_LIMIT))
    shown: list[Story] = []
    cursor = max_id
    for _ in range(SCAN_FACTOR):
        bounded = query if cursor is None else query.where(Story.id < cursor)
        chunk = (await session.scalars(bounded.order_by(Story.id.desc()).limit(limit))).all()
        await _load_actors(session, chunk)  # so may_see finds groups in the identity map
        for candidate in chunk:
            if await may_see(session, candidate, viewer_id):
                shown.append(candidate)
                if len(shown) == limit:
                    return StoryPage(await _entries(session, shown), candidate.id)
        if len(chunk) < limit:
            return StoryPage(await _entries(session, shown), None)
        cursor = chunk[-1].id
    return StoryPage(await _entries(session, shown), cursor)


async def _load_actors(session: AsyncSession, stories: Iterable[Story]) -> dict[int, Actor]:
    ids = {s.author_id for s in stories} | {s.group_id for s in stories if s.group_id}
    if not ids:
        return {}
    rows = await session.scalars(select(Actor).where(Actor.id.in_(ids)))
    return {actor.id: actor for actor in rows}


async def _entries(session: AsyncSession, stories: Sequence[Story]) -> list[StoryEntry]:
    actors = await _load_actors(session, stories)
    return [
        StoryEntry(s, actors[s.author_id], actors.get(s.group_id) if s.group_id else None)
        for s in stories
    ]


async def _group_entries(
    session: AsyncSession, found: Sequence[Actor], viewer_id: int
) -> list[GroupEntry]:
    ids = [g.id for g in found]
    rows = await session.execute(
        select(GroupMember.group_id, func.count())
        .where(GroupMember.group_id.in_(ids), GroupMember.state == MembershipState.ACTIVE)
        .group_by(GroupMember.group_id)
    )
    counts: dict[int, int] = {group_id: count for group_id, count in rows}
    mine = await session.scalars(
        select(GroupMember).where(GroupMember.group_id.in_(ids), GroupMember.actor_id == viewer_id)
    )
    memberships = {m.group_id: m for m in mine}
    return [GroupEntry(g, counts.get(g.id, 0), memberships.get(g.id)) for g in found]
