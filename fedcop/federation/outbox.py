"""Publishing: an activity and its deliveries are written in the caller's transaction.

This is the transactional outbox: a service changes state and calls `publish` before it
commits, so the change and the intent to deliver it commit together or not at all. Recipients
are expanded here, once: followers are resolved to inboxes, shared inboxes are preferred, each
distinct inbox gets one delivery row, blocked servers get none, and local recipients get the
activity in their inbox queue without any HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap.remote import host_of
from fedcop.federation.doorbell import ring_after_commit
from fedcop.federation.policy import domain_is_listed, domains_with
from fedcop.models import (
    Actor,
    BlockSeverity,
    Delivery,
    Follow,
    FollowState,
    InboxItem,
    OutboxActivity,
    utcnow,
)


@dataclass(frozen=True, slots=True)
class Audience:
    """Who receives an activity: the actor's followers, and/or named actors."""

    followers: bool = False
    actors: Sequence[Actor] = field(default_factory=tuple)
    # Followers of other local actors too (a story's Delete reaches its group's followers).
    followers_of: Sequence[Actor] = field(default_factory=tuple)
    # Members-only content must reach only its recipients' own inboxes: a shared inbox
    # would show it to everyone on that server who follows anyone here.
    shared_inboxes: bool = True
    # Which servers get this form of an activity, when one activity has two forms (a group's
    # Announce: Mastodon's and FEP-1b12's). `only_domains` also leaves local recipients out.
    only_domains: frozenset[str] | None = None
    except_domains: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Published:
    activity: OutboxActivity
    deliveries: int
    local: bool


async def publish(
    session: AsyncSession,
    actor: Actor,
    activity: dict[str, Any],
    audience: Audience,
    *,
    public: bool = False,
) -> Published:
    """Record `activity` by local `actor` and one delivery per distinct remote inbox."""
    body = orjson.dumps(activity).decode()
    row = OutboxActivity(
        ap_id=activity["id"],
        actor_id=actor.id,
        type=activity["type"],
        activity=activity,
        body=body,
        public=public,
        fanned_out_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    inboxes, has_local = await _recipient_inboxes(session, actor, audience)
    blocked = await domains_with(session, BlockSeverity.SUSPEND)
    rows = [
        {"activity_id": row.id, "inbox_url": url, "domain": domain}
        for url, domain in _interleaved_by_domain(inboxes)
        if not domain_is_listed(domain, blocked) and _addressed(domain, audience)
    ]
    if rows:
        await session.execute(insert(Delivery), rows)
        ring_after_commit(session, "deliveries")
    if has_local and audience.only_domains is None:
        session.add(
            InboxItem(ap_id=row.ap_id, type=row.type, actor_ap_id=actor.ap_id, activity=activity)
        )
        ring_after_commit(session, "inbox")
    return Published(activity=row, deliveries=len(rows), local=has_local)


async def _recipient_inboxes(
    session: AsyncSession, actor: Actor, audience: Audience
) -> tuple[set[tuple[str, str]], bool]:
    inboxes: set[tuple[str, str]] = set()
    has_local = False
    for whose in ([actor] if audience.followers else []) + list(audience.followers_of):
        has_local = await _has_local_followers(session, whose) or has_local
        inboxes |= await _follower_inboxes(session, whose, audience.shared_inboxes)
    for recipient in audience.actors:
        if recipient.local:
            has_local = True
        else:
            url = _inbox_of(recipient, audience.shared_inboxes)
            if url is not None:
                inboxes.add((url, host_of(url)))
    return inboxes, has_local


async def _follower_inboxes(
    session: AsyncSession, actor: Actor, shared: bool
) -> set[tuple[str, str]]:
    inbox = func.coalesce(Actor.shared_inbox_url, Actor.inbox_url) if shared else Actor.inbox_url
    query = (
        select(inbox)
        .distinct()
        .join(Follow, Follow.follower_id == Actor.id)
        .where(
            Follow.followed_id == actor.id,
            Follow.state == FollowState.ACCEPTED,
            Actor.local.is_(False),
            Actor.deleted_at.is_(None),
            inbox.is_not(None),
        )
    )
    urls = (await session.scalars(query)).all()
    return {(url, host_of(url)) for url in urls if url}


async def _has_local_followers(session: AsyncSession, actor: Actor) -> bool:
    query = (
        select(Follow.id)
        .join(Actor, Follow.follower_id == Actor.id)
        .where(Follow.followed_id == actor.id, Follow.state == FollowState.ACCEPTED, Actor.local)
        .limit(1)
    )
    return (await session.scalar(query)) is not None


def _interleaved_by_domain(inboxes: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each domain's first inbox, then each one's second, and so on (sorted within a round).

    The worker claims due rows in id order and sends at most a few at a time to one host: rows
    written host by host (a personal-inbox-only server with hundreds of followers) would fill
    every claim with rows that must wait for that host, leaving the other hosts idle.
    """
    seen: Counter[str] = Counter()
    ranked = []
    for url, domain in sorted(inboxes):
        ranked.append((seen[domain], domain, url))
        seen[domain] += 1
    return [(url, domain) for _, domain, url in sorted(ranked)]


def _addressed(domain: str, audience: Audience) -> bool:
    if domain in audience.except_domains:
        return False
    return audience.only_domains is None or domain in audience.only_domains


def _inbox_of(actor: Actor, shared: bool) -> str | None:
    return (actor.shared_inbox_url or actor.inbox_url) if shared else actor.inbox_url


async def unlist(session: AsyncSession, post_ap_id: str) -> None:
    """Take every activity that carries a post out of the outboxes (a post deleted, withdrawn
    or removed): its Create kept the whole text, readable in the outbox for ever otherwise.

    Matched on the post's id as a JSON string in the stored body (the object of a Create or
    Update, a boost of it, a group's Announce of a member's Create, a reply to it).
    """
    quoted = orjson.dumps(post_ap_id).decode()
    await session.execute(
        update(OutboxActivity)
        .where(OutboxActivity.public, OutboxActivity.body.contains(quoted, autoescape=True))
        .values(public=False)
    )
