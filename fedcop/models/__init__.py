"""SQLAlchemy tables. Importing this package registers every table on `Base.metadata`."""

from __future__ import annotations

from fedcop.models.actor import Actor, ActorType, GroupVisibility, LocalKey
from fedcop.models.base import Base, utcnow
from fedcop.models.group import GroupMember, GroupRole, MembershipState

__all__ = [
    "Actor",
    "ActorType",
    "Base",
    "GroupMember",
    "GroupRole",
    "GroupVisibility",
    "LocalKey",
    "MembershipState",
    "utcnow",
]
