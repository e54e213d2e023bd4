"""Invitations: a group's owner or moderator invites a local person, who accepts or declines.

An invitation is a membership in state `invited` (who invited is kept); accepting makes it
active at once, with no further approval, and follows the group so its stories reach the
person; declining removes it. Every step is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from fedcop.db import SessionMaker
from fedcop.errors import ConflictError, NotFoundError, ValidationError
from fedcop.federation import follows
from fedcop.federation.groups import is_blocked
from fedcop.models import Actor, GroupMember, MembershipState
from fedcop.services.groups import Membership, local_group, local_person, require_moderator
from fedcop.services.moderation import record


@dataclass(frozen=True, slots=True)
class Invitation:
    group: str  # the group's id
    group_username: str
    group_name: str
    invitee: str
    invited_by: str | None  # None once the inviter's account is gone
    created_at: datetime


async def invite(
    db: SessionMaker, group_name: str, person_name: str, moderator_name: str
) -> Invitation:
    async with db.begin() as session:
        group = await local_group(session, group_name)
        moderator = await require_moderator(session, group, moderator_name)
        person = await local_person(session, person_name)
        if await is_blocked(session, group, person):
            raise ValidationError(f"{person.handle} is blocked from {group.handle}")
        existing = await session.get(GroupMember, (group.id, person.id))
        if existing is not None:
            raise ConflictError(_already(existing.state, person, group))
        member = GroupMember(
            group_id=group.id, actor_id=person.id, state=MembershipState.INVITED,
            invited_by_id=moderator.id,
        )  # fmt: skip
        session.add(member)
        await session.flush()
        await record(session, moderator, "invite", person.ap_id, group.ap_id)
        return Invitation(group.ap_id, group.username, group.name, person.ap_id,
                          moderator.ap_id, member.created_at)  # fmt: skip


async def accept(db: SessionMaker, group_name: str, person_name: str) -> Membership:
    async with db.begin() as session:
        group, person, member = await _invitation(session, group_name, person_name)
        if await is_blocked(session, group, person):
            raise ValidationError(f"{person.handle} is blocked from {group.handle}")
        member.state = MembershipState.ACTIVE
        await follows.follow_locally(session, person, group)
        await record(session, person, "accept invitation", person.ap_id, group.ap_id)
        return Membership(group.ap_id, person.ap_id, member.role, member.state)


async def decline(db: SessionMaker, group_name: str, person_name: str) -> None:
    async with db.begin() as session:
        group, person, _ = await _invitation(session, group_name, person_name)
        await session.execute(
            delete(GroupMember).where(
                GroupMember.group_id == group.id,
                GroupMember.actor_id == person.id,
                GroupMember.state == MembershipState.INVITED,
            )
        )
        await record(session, person, "decline invitation", person.ap_id, group.ap_id)


async def invitations_for(db: SessionMaker, person_name: str) -> list[Invitation]:
    """The person's open invitations, oldest first."""
    group, inviter = aliased(Actor), aliased(Actor)
    async with db() as session:
        person = await local_person(session, person_name)
        rows = await session.execute(
            select(GroupMember, group, inviter.ap_id)
            .join(group, group.id == GroupMember.group_id)
            .outerjoin(inviter, inviter.id == GroupMember.invited_by_id)
            .where(
                GroupMember.actor_id == person.id,
                GroupMember.state == MembershipState.INVITED,
                group.deleted_at.is_(None),
            )
            .order_by(GroupMember.created_at, GroupMember.group_id)
        )
        return [
            Invitation(g.ap_id, g.username, g.name, person.ap_id, by, m.created_at)
            for m, g, by in rows
        ]


async def _invitation(
    session: AsyncSession, group_name: str, person_name: str
) -> tuple[Actor, Actor, GroupMember]:
    group = await local_group(session, group_name)
    person = await local_person(session, person_name)
    member = await session.get(GroupMember, (group.id, person.id))
    if member is None or member.state != MembershipState.INVITED:
        raise NotFoundError(f"{person.handle} has no invitation to {group.handle}")
    return group, person, member


def _already(state: str, person: Actor, group: Actor) -> str:
    if state == MembershipState.INVITED:
        return f"{person.handle} is already invited to {group.handle}"
    if state == MembershipState.PENDING:
        return f"{person.handle} has asked to join {group.handle}: approve the request instead"
    return f"{person.handle} is already a member of {group.handle}"
