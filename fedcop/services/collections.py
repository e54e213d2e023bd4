"""Reading the members of a local actor's collections."""

from __future__ import annotations

from sqlalchemy import select

from fedcop.db import SessionMaker
from fedcop.models import Actor, GroupMember, GroupRole, MembershipState


async def group_moderator_ids(db: SessionMaker, group: Actor) -> list[str]:
    """The owners and moderators of a group, oldest first, as actor ids."""
    query = (
        select(Actor.ap_id)
        .join(GroupMember, GroupMember.actor_id == Actor.id)
        .where(
            GroupMember.group_id == group.id,
            GroupMember.state == MembershipState.ACTIVE,
            GroupMember.role.in_([GroupRole.OWNER, GroupRole.MODERATOR]),
        )
        .order_by(GroupMember.created_at, Actor.id)
    )
    async with db() as session:
        return list((await session.scalars(query)).all())
