"""Activities local actors have published: the transactional outbox.

A service that changes state writes the activity here in the same transaction, so the change
and the intent to federate it commit together or not at all. Fan-out into per-inbox deliveries
happens from these rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fedcop.models.base import Base, UTCDateTime, utcnow


class OutboxActivity(Base):
    __tablename__ = "outbox_activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    ap_id: Mapped[str] = mapped_column(String(2048), unique=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    activity: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The exact bytes every delivery POSTs (and signs the digest of): serialised once.
    body: Mapped[str] = mapped_column(Text, default="")
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # NULL until the fan-out has written a delivery row for every recipient inbox.
    fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_outbox_activities_actor_id_id", "actor_id", "id"),
        Index("ix_outbox_activities_pending", "fanned_out_at", "id"),
    )
