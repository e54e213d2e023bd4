"""Roles in a group: an owner appoints moderators from its active members, or stands them down.

Moderators are the group's `attributedTo` collection (FEP-1b12). Lemmy-family followers are
told with the owner's `Add`/`Remove` of the person to that collection, announced by the group
(https://codeberg.org/fediverse/fep/src/branch/main/fep/1b12/fep-1b12.md#group-moderation).
Every change is written to the audit log.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap import activities
from fedcop.ap.actors import moderators_url
from fedcop.db import SessionMaker
from fedcop.errors import NotFoundError, PermissionDeniedError, ValidationError
from fedcop.federation.content import announce_activity
from fedcop.models import Actor, GroupMember, GroupRole, MembershipState
from fedcop.services.groups import Membership, local_group, local_person
from fedcop.services.moderation import record


async def set_role(
    db: SessionMaker, group_name: str, person_name: str, role: str, owner_name: str
) -> Membership:
    """An owner (or an admin) makes an active member a moderator, or a moderator a member."""
    if role not in (GroupRole.MODERATOR, GroupRole.MEMBER):
        raise ValidationError("role must be 'moderator' or 'member'")
    async with db.begin() as session:
        group = await local_group(session, group_name)
        owner = await require_owner(session, group, owner_name)
        person = await local_person(session, person_name)
        member = await session.get(GroupMember, (group.id, person.id))
        if member is None or member.state != MembershipState.ACTIVE:
            raise NotFoundError(f"{person.handle} is not a member of {group.handle}")
        if member.role == GroupRole.OWNER:
            raise ValidationError("an owner's role is not changed here")
        if member.role != role:
            member.role = role
            change = activities.moderator_change(
                "Add" if role == GroupRole.MODERATOR else "Remove", owner.ap_id, person.ap_id,
                group.ap_id, moderators_url(group.ap_id),
            )  # fmt: skip
            await announce_activity(session, group, change)
            await record(session, owner, f"make {role}", person.ap_id, group.ap_id)
        return Membership(group.ap_id, person.ap_id, member.role, member.state)


async def require_owner(session: AsyncSession, group: Actor, username: str) -> Actor:
    person = await local_person(session, username)
    member = await session.get(GroupMember, (group.id, person.id))
    if person.is_admin or (member is not None and member.role == GroupRole.OWNER):
        return person
    raise PermissionDeniedError(f"{person.handle} is not an owner of {group.handle}")
