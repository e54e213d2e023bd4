"""The instance's federation policy: which organisations' servers it refuses."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fedcop.models.base import Base, UTCDateTime, utcnow


class BlockSeverity(enum.StrEnum):
    SUSPEND = "suspend"  # no federation at all: requests refused with 403, nothing delivered
    SILENCE = "silence"  # federates, but its content is kept out of public views


class DomainBlock(Base):
    __tablename__ = "domain_blocks"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)  # lowercase host[:port]
    severity: Mapped[str] = mapped_column(String(16), default=BlockSeverity.SUSPEND)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
