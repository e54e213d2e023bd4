"""What software other servers run, as their NodeInfo says, and when we last asked."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from fedcop.models.base import Base, UTCDateTime


class InstanceSoftware(Base):
    """One row per server asked. `software` NULL: it gave no usable NodeInfo (asked again later).

    Kept apart from `instances` (delivery health, written by every delivery batch) so that
    the two never contend for the same rows.
    """

    __tablename__ = "instance_software"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    software: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(64))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
