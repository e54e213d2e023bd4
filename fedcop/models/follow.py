"""Who follows whom, in either direction across the wire."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fedcop.models.base import Base, UTCDateTime, utcnow


class FollowState(enum.StrEnum):
    PENDING = "pending"  # asked; awaiting Accept (remote) or a moderator (local)
    ACCEPTED = "accepted"


class Follow(Base):
    __tablename__ = "follows"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The Follow activity's id: the remote one for inbound follows, ours for outbound.
    ap_id: Mapped[str] = mapped_column(String(2048), unique=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    followed_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default=FollowState.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("follower_id", "followed_id"),
        # Followers pages and fan-out read by followed actor, newest first (keyset on id).
        Index("ix_follows_followed_state_id", "followed_id", "state", "id"),
        Index("ix_follows_follower_state_id", "follower_id", "state", "id"),
    )
