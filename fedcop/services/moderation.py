"""Moderation use cases: removing stories and comments from a group, blocking people from a
group, reports, and the audit log that records every action.

On the wire (FEP-1b12 as Mastodon can follow it): removing a story the group shared sends the
group's `Undo{Announce}` to its followers, so the boost leaves their timelines; blocking sends
`Block{person}` from the group to that person, and ends their membership and follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker
from fedcop.errors import NotFoundError, ValidationError
from fedcop.federation import content
from fedcop.federation.access import find_post
from fedcop.federation.outbox import unlist
from fedcop.federation.remote_actors import RemoteActors
from fedcop.models import (
    Actor,
    AuditEntry,
    Comment,
    Follow,
    GroupBlock,
    GroupMember,
    GroupRole,
    Story,
    utcnow,
)
from fedcop.services.groups import local_group, require_moderator


@dataclass(frozen=True, slots=True)
class AuditLine:
    when: datetime
    moderator: str | None
    action: str
    target: str
    scope: str | None
    reason: str


async def record(
    session: AsyncSession, moderator: Actor | None, action: str, target: str,
    scope: str | None = None, reason: str = "",
) -> None:  # fmt: skip
    session.add(
        AuditEntry(
            moderator_id=moderator.id if moderator else None, action=action, target=target,
            scope=scope, reason=reason[:2000],
        )
    )  # fmt: skip


async def remove_post(
    db: SessionMaker, urls: LocalUrls, post_id: str, moderator_name: str, reason: str
) -> None:
    """A moderator of the post's group takes a story or comment out of the group."""
    async with db.begin() as session:
        post = await _post(session, post_id)
        story = post if isinstance(post, Story) else await session.get(Story, post.story_id)
        if story is None or story.group_id is None:
            raise ValidationError(f"{post_id} is not in a group")
        group = await session.get(Actor, story.group_id)
        if group is None or not group.local:
            raise ValidationError("only a group on this server can be moderated here")
        moderator = await require_moderator(session, group, moderator_name)
        if post.removed_at is not None:
            return
        post.removed_at = utcnow()
        await unlist(session, post.ap_id)
        await content.announce_removal(session, group, moderator, post.ap_id)
        if isinstance(post, Story):
            await content.take_back_boost(session, group, post)
        await record(session, moderator, "remove", post_id, group.ap_id, reason)


async def block_from_group(
    db: SessionMaker, actors: RemoteActors, group_name: str, target: str,
    moderator_name: str, reason: str,
) -> None:  # fmt: skip
    person = await (actors.get(target) if target.startswith("http") else actors.by_handle(target))
    async with db.begin() as session:
        group = await local_group(session, group_name)
        moderator = await require_moderator(session, group, moderator_name)
        member = await session.get(GroupMember, (group.id, person.id))
        if member is not None and member.role != GroupRole.MEMBER:
            raise ValidationError("owners and moderators cannot be blocked from their group")
        if await session.get(GroupBlock, (group.id, person.id)) is None:
            session.add(GroupBlock(group_id=group.id, actor_id=person.id, reason=reason))
        await session.execute(delete(GroupMember).where(
            GroupMember.group_id == group.id, GroupMember.actor_id == person.id))  # fmt: skip
        await session.execute(delete(Follow).where(
            Follow.followed_id == group.id, Follow.follower_id == person.id))  # fmt: skip
        if not person.local:
            await content.send_ban(session, group, moderator, person)
        await record(session, moderator, "block", person.ap_id, group.ap_id, reason)


async def audit_log(db: SessionMaker, limit: int = 100) -> list[AuditLine]:
    async with db() as session:
        rows = await session.execute(
            select(AuditEntry, Actor.ap_id)
            .outerjoin(Actor, Actor.id == AuditEntry.moderator_id)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
        return [
            AuditLine(e.created_at, who, e.action, e.target, e.scope, e.reason) for e, who in rows
        ]


async def _post(session: AsyncSession, ap_id: str) -> Story | Comment:
    found = await find_post(session, ap_id)
    if found is None:
        raise NotFoundError(f"no story or comment {ap_id} here")
    return found
