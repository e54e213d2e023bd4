"""Use cases for community groups: joining, approving members, and who may post.

Invitations (`services/invitations.py`) are memberships in state `invited`.

Membership is the group's own list (`group_members`). A person who joins also follows the
group, so its stories reach them; remote people join by following, and their accepted follow
makes them members (approval per the group's visibility).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.db import SessionMaker
from fedcop.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from fedcop.federation import follows
from fedcop.federation.groups import is_blocked
from fedcop.models import (
    Actor,
    ActorType,
    GroupMember,
    GroupRole,
    GroupVisibility,
    MembershipState,
)
from fedcop.services.actors import find_local_actor

POSTING_POLICIES = ("members", "followers")


@dataclass(frozen=True, slots=True)
class Membership:
    group: str
    member: str
    role: str
    state: str


async def local_group(session: AsyncSession, username: str) -> Actor:
    group = await find_local_actor(session, username)
    if group is None or group.type != ActorType.GROUP or group.deleted_at is not None:
        raise NotFoundError(f"no community group named {username!r} here")
    return group


async def join(db: SessionMaker, group_name: str, person_name: str) -> Membership:
    """A local person joins: at once in an open group, else as a request for moderators."""
    async with db.begin() as session:
        group = await local_group(session, group_name)
        person = await local_person(session, person_name)
        if await is_blocked(session, group, person):
            raise ValidationError(f"{person.handle} is blocked from {group.handle}")
        existing = await session.get(GroupMember, (group.id, person.id))
        if existing is not None and existing.state == MembershipState.INVITED:
            existing.state = MembershipState.ACTIVE  # joining where invited accepts the invitation
            await follows.follow_locally(session, person, group)
            return Membership(group.ap_id, person.ap_id, existing.role, existing.state)
        if existing is not None:
            raise ConflictError(f"{person.handle} is already in {group.handle} (or has asked)")
        state = (
            MembershipState.ACTIVE
            if group.group_visibility == GroupVisibility.OPEN
            else MembershipState.PENDING
        )
        session.add(GroupMember(group_id=group.id, actor_id=person.id, state=state))
        if state == MembershipState.ACTIVE:
            await follows.follow_locally(session, person, group)
        return Membership(group.ap_id, person.ap_id, GroupRole.MEMBER, state)


async def approve(
    db: SessionMaker, group_name: str, person_name: str, moderator: str
) -> Membership:
    async with db.begin() as session:
        group = await local_group(session, group_name)
        await require_moderator(session, group, moderator)
        person = await local_person(session, person_name)
        member = await session.get(GroupMember, (group.id, person.id))
        if member is None or member.state != MembershipState.PENDING:
            raise NotFoundError(f"{person.handle} has not asked to join {group.handle}")
        member.state = MembershipState.ACTIVE
        await follows.follow_locally(session, person, group)
        return Membership(group.ap_id, person.ap_id, member.role, member.state)


async def members(db: SessionMaker, group_name: str) -> list[Membership]:
    async with db() as session:
        group = await local_group(session, group_name)
        rows = await session.execute(
            select(GroupMember, Actor.ap_id)
            .join(Actor, Actor.id == GroupMember.actor_id)
            .where(GroupMember.group_id == group.id)
            .order_by(GroupMember.created_at, Actor.id)
        )
        return [Membership(group.ap_id, ap_id, m.role, m.state) for m, ap_id in rows]


async def require_moderator(session: AsyncSession, group: Actor, username: str) -> Actor:
    person = await local_person(session, username)
    member = await session.get(GroupMember, (group.id, person.id))
    if person.is_admin or (
        member is not None and member.role in (GroupRole.OWNER, GroupRole.MODERATOR)
    ):
        return person
    raise PermissionDeniedError(f"{person.handle} is not a moderator of {group.handle}")


async def local_person(session: AsyncSession, username: str) -> Actor:
    person = await find_local_actor(session, username)
    if person is None or person.type != ActorType.PERSON:
        raise NotFoundError(f"no local person named {username!r}")
    return person
