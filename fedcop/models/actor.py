"""Actors: local and remote people, groups and the instance actor, in one table.

One table, because everything that points at an actor (follows, memberships, stories,
deliveries) must not care where the actor lives; `local` says which side of the wire it is on.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fedcop.models.base import Base, UTCDateTime, utcnow


class ActorType(enum.StrEnum):
    PERSON = "Person"
    GROUP = "Group"
    APPLICATION = "Application"
    SERVICE = "Service"
    ORGANIZATION = "Organization"


class GroupVisibility(enum.StrEnum):
    OPEN = "open"  # anyone follows; stories are public
    APPROVAL = "approval"  # following needs a moderator's approval
    PRIVATE = "private"  # members only; nothing served to outsiders


class Actor(Base):
    __tablename__ = "actors"

    id: Mapped[int] = mapped_column(primary_key=True)
    ap_id: Mapped[str] = mapped_column(String(2048), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    local: Mapped[bool] = mapped_column(Boolean)
    # Local: the lowercase handle. Remote: their preferredUsername as given.
    username: Mapped[str] = mapped_column(String(255))
    # NULL for local actors, so a change of FEDCOP_DOMAIN cannot split the namespace.
    domain: Mapped[str | None] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    summary: Mapped[str] = mapped_column(Text, default="")  # sanitised HTML
    profile_fields: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    icon_url: Mapped[str | None] = mapped_column(String(2048))
    image_url: Mapped[str | None] = mapped_column(String(2048))
    manually_approves_followers: Mapped[bool] = mapped_column(Boolean, default=False)
    discoverable: Mapped[bool] = mapped_column(Boolean, default=True)
    indexable: Mapped[bool] = mapped_column(Boolean, default=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    group_visibility: Mapped[str | None] = mapped_column(String(16))
    # Groups: who may post (members | followers), their rules (sanitised HTML) and topics.
    posting_policy: Mapped[str | None] = mapped_column(String(16))
    rules: Mapped[str | None] = mapped_column(Text)
    topics: Mapped[list[str] | None] = mapped_column(JSON)

    # Endpoints: remote actors' are stored as fetched; local ones are derived from ap_id.
    inbox_url: Mapped[str | None] = mapped_column(String(2048))
    outbox_url: Mapped[str | None] = mapped_column(String(2048))
    shared_inbox_url: Mapped[str | None] = mapped_column(String(2048))
    followers_url: Mapped[str | None] = mapped_column(String(2048))
    following_url: Mapped[str | None] = mapped_column(String(2048))
    featured_url: Mapped[str | None] = mapped_column(String(2048))
    profile_url: Mapped[str | None] = mapped_column(String(2048))

    public_key_id: Mapped[str | None] = mapped_column(String(2048), index=True)
    public_key_pem: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Local people: when they last did something, for NodeInfo's active-user counts.
    last_active_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    key: Mapped[LocalKey | None] = relationship(back_populates="actor", lazy="raise")

    __table_args__ = (
        # People and groups share one handle namespace (Mastodon asks only `acct:`), and
        # handles are case-insensitive, so uniqueness is on the lowercase local username.
        Index(
            "uq_actors_local_username",
            func.lower(username),
            unique=True,
            sqlite_where=text("local"),
            postgresql_where=text("local"),
        ),
    )

    @property
    def handle(self) -> str:
        return f"@{self.username}@{self.domain}" if self.domain else f"@{self.username}"


class LocalKey(Base):
    """The private half of a local actor's key pair, kept apart from the public actor row."""

    __tablename__ = "local_keys"

    actor_id: Mapped[int] = mapped_column(
        ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True
    )
    private_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # After `keys rotate`: the key replaced, and the outbox activity (the Update announcing the
    # new key) that is still signed with it. GoToSocial verifies with the key it has cached
    # and never refetches one it has (services/keys.py), so only that Update can teach it.
    previous_private_key_pem: Mapped[str | None] = mapped_column(Text)
    rotation_activity_id: Mapped[int | None] = mapped_column(Integer)

    actor: Mapped[Actor] = relationship(back_populates="key", lazy="raise")
