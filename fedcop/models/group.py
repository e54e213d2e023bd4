"""Membership of community groups."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from fedcop.models.base import Base, UTCDateTime, utcnow


class GroupRole(enum.StrEnum):
    OWNER = "owner"
    MODERATOR = "moderator"
    MEMBER = "member"


class MembershipState(enum.StrEnum):
    ACTIVE = "active"
    PENDING = "pending"  # asked to join, awaiting a moderator
    INVITED = "invited"  # invited, awaiting the person


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True
    )
    actor_id: Mapped[int] = mapped_column(
        ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16), default=GroupRole.MEMBER)
    state: Mapped[str] = mapped_column(String(16), default=MembershipState.ACTIVE)
    # Who invited this person (state INVITED, or an accepted invitation); NULL otherwise.
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
