"""Stories, comments and reactions: local and remote content in the same tables.

A **story** is any top-level piece of content: a local member's story (an `Article`), or a
remote post that reached us (a Lemmy `Page`, a Mastodon `Note` addressed to a group, ...).
A **comment** is a reply in a story's thread, at any depth.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fedcop.models.base import Base, UTCDateTime, utcnow


class Visibility(enum.StrEnum):
    PUBLIC = "public"  # Public in to
    UNLISTED = "unlisted"  # Public in cc
    FOLLOWERS = "followers"  # the author's (or group's) followers only
    MEMBERS = "members"  # the group's members only, delivered to personal inboxes
    DIRECT = "direct"  # named recipients only


# What anyone may read (a group's privacy aside): Public addressed in `to` or in `cc`.
SEEN_BY_ANYONE = frozenset({Visibility.PUBLIC, Visibility.UNLISTED})


class ConsentScope(enum.StrEnum):
    GROUP = "group"  # may be shared within this group
    NETWORK = "network"  # may be shared with the group's federated followers
    PUBLIC = "public"  # may be public


class Story(Base):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    ap_id: Mapped[str] = mapped_column(String(2048), unique=True)
    local: Mapped[bool] = mapped_column(Boolean)
    type: Mapped[str] = mapped_column(String(32), default="Article")
    author_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(500), default="")
    summary: Mapped[str] = mapped_column(Text, default="")  # HTML teaser
    content: Mapped[str] = mapped_column(Text, default="")  # sanitised HTML
    source: Mapped[str | None] = mapped_column(Text)  # the author's Markdown (local only)
    content_warning: Mapped[str | None] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(String(2048))
    visibility: Mapped[str] = mapped_column(String(16), default=Visibility.PUBLIC)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    remote_attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Information governance (local): the author confirmed there is no patient-identifiable
    # information in the story, at this moment.
    pii_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # by a moderator
    like_count: Mapped[int] = mapped_column(Integer, default=0)
    announce_count: Mapped[int] = mapped_column(Integer, default=0)
    comment_count: Mapped[int] = mapped_column(Integer, default=0)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_stories_group_id_id", "group_id", "id"),)


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ap_id: Mapped[str] = mapped_column(String(2048), unique=True)
    local: Mapped[bool] = mapped_column(Boolean)
    author_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    in_reply_to: Mapped[str] = mapped_column(String(2048))  # the story's or a comment's id
    content: Mapped[str] = mapped_column(Text, default="")  # sanitised HTML
    source: Mapped[str | None] = mapped_column(Text)
    content_warning: Mapped[str | None] = mapped_column(String(500))
    visibility: Mapped[str] = mapped_column(String(16), default=Visibility.PUBLIC)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    like_count: Mapped[int] = mapped_column(Integer, default=0)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_comments_story_id_id", "story_id", "id"),)


class Reaction(Base):
    """A Like or an Announce (share) of a story or comment, by anyone."""

    __tablename__ = "reactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    ap_id: Mapped[str] = mapped_column(String(2048), unique=True)  # the activity's id
    type: Mapped[str] = mapped_column(String(16))  # Like | Announce
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    object_ap_id: Mapped[str] = mapped_column(String(2048), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("actor_id", "type", "object_ap_id"),)


class Consent(Base):
    """Consent of a person who uses services, for a story told by or about them."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    given_by: Mapped[str] = mapped_column(String(255))  # who gave it (name or role), as recorded
    scope: Mapped[str] = mapped_column(String(16))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id", ondelete="SET NULL"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
