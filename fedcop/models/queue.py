"""Background work as rows with explicit state: inbound items and outbound deliveries.

Workers claim due rows (FOR UPDATE SKIP LOCKED on PostgreSQL), so any number of worker
processes share the queues, and a crash leaves a row that is claimed again once its lock
expires: nothing is lost, at worst something is done twice, and every handler is idempotent.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fedcop.models.base import Base, UTCDateTime, utcnow


class WorkState(enum.StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    DONE = "done"
    IGNORED = "ignored"  # understood, nothing to do (unknown types)
    FAILED = "failed"  # gave up: permanent error or out of attempts
    SKIPPED = "skipped"  # not attempted: the instance is marked unavailable


class InboxItem(Base):
    """An authenticated activity, acknowledged with 202 and waiting to be processed."""

    __tablename__ = "inbox_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    ap_id: Mapped[str] = mapped_column(String(2048), unique=True)  # de-duplication
    type: Mapped[str] = mapped_column(String(64))
    actor_ap_id: Mapped[str] = mapped_column(String(2048))
    activity: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=WorkState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_inbox_items_due", "state", "next_attempt_at", "id"),)


class Delivery(Base):
    """One POST of one outbox activity to one inbox."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("outbox_activities.id", ondelete="CASCADE"))
    inbox_url: Mapped[str] = mapped_column(String(2048))
    domain: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default=WorkState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("activity_id", "inbox_url"),
        Index("ix_deliveries_due", "state", "next_attempt_at", "id"),
        Index("ix_deliveries_domain_state", "domain", "state"),
    )


class Instance(Base):
    """What fedcop knows of another server's health, for skipping dead ones."""

    __tablename__ = "instances"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    unavailable_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
