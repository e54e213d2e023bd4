"""SQLAlchemy tables. Importing this package registers every table on `Base.metadata`."""

from __future__ import annotations

from fedcop.models.activity import OutboxActivity
from fedcop.models.actor import Actor, ActorType, GroupVisibility, LocalKey
from fedcop.models.base import Base, utcnow
from fedcop.models.content import (
    SEEN_BY_ANYONE,
    Comment,
    Consent,
    ConsentScope,
    Reaction,
    Story,
    Visibility,
)
from fedcop.models.follow import Follow, FollowState
from fedcop.models.group import GroupMember, GroupRole, MembershipState
from fedcop.models.media import ImageType, Media
from fedcop.models.moderation import AuditEntry, GroupBlock
from fedcop.models.policy import BlockSeverity, DomainBlock
from fedcop.models.queue import Delivery, InboxItem, Instance, WorkState
from fedcop.models.software import InstanceSoftware
from fedcop.models.token import ApiToken, Report

__all__ = [
    "SEEN_BY_ANYONE",
    "Actor",
    "ActorType",
    "ApiToken",
    "AuditEntry",
    "Base",
    "BlockSeverity",
    "Comment",
    "Consent",
    "ConsentScope",
    "Delivery",
    "DomainBlock",
    "Follow",
    "FollowState",
    "GroupBlock",
    "GroupMember",
    "GroupRole",
    "GroupVisibility",
    "ImageType",
    "InboxItem",
    "Instance",
    "InstanceSoftware",
    "LocalKey",
    "Media",
    "MembershipState",
    "OutboxActivity",
    "Reaction",
    "Report",
    "Story",
    "Visibility",
    "WorkState",
    "utcnow",
]
