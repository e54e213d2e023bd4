"""Reports: a local person tells this instance's moderators about a story, comment or actor.

Reports are stored for this instance's moderators. When the reporter asks, a report about
someone else's server's actor or post is also forwarded there as a `Flag` from the instance
actor, naming the reported actor and post but never the reporter — as Mastodon does
(https://docs.joinmastodon.org/spec/activitypub/#Flag).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap.activities import new_activity_id
from fedcop.ap.context import AS_CONTEXT
from fedcop.db import SessionMaker
from fedcop.errors import NotFoundError, ValidationError
from fedcop.federation.access import find_post, may_see, thread_of
from fedcop.federation.outbox import Audience, publish
from fedcop.models import Actor, ActorType, AuditEntry, Report

MAX_COMMENT = 1000


@dataclass(frozen=True, slots=True)
class ReportSummary:
    id: int
    object: str
    comment: str
    created_at: datetime
    forwarded: bool


async def report(
    db: SessionMaker, reporter_id: int, object_ap_id: str, comment: str, *, forward: bool = False
) -> ReportSummary:
    if len(comment) > MAX_COMMENT:
        raise ValidationError(f"a report's comment is at most {MAX_COMMENT} characters")
    async with db.begin() as session:
        if not await _is_known(session, object_ap_id, reporter_id):
            # Unknown and unseen alike: a report must not reveal hidden content exists.
            raise NotFoundError(f"{object_ap_id} is not a story, comment or actor known here")
        row = Report(
            reporter_id=reporter_id,
            object_ap_id=object_ap_id,
            comment=comment.strip(),
            forwarded=False,
        )
        session.add(row)
        if forward:
            row.forwarded = await _forward(session, object_ap_id, row.comment)
        await session.flush()
        return ReportSummary(row.id, row.object_ap_id, row.comment, row.created_at, row.forwarded)


async def _is_known(session: AsyncSession, ap_id: str, viewer_id: int) -> bool:
    if await session.scalar(select(Actor.id).where(Actor.ap_id == ap_id)) is not None:
        return True
    story = await thread_of(session, ap_id)
    return story is not None and await may_see(session, story, viewer_id)


async def _forward(session: AsyncSession, object_ap_id: str, comment: str) -> bool:
    """Send a `Flag` to the reported thing's own server; False when it lives here."""
    author = await _author_of(session, object_ap_id)
    if author is None or author.local:
        return False
    instance = await session.scalar(
        select(Actor).where(Actor.local, Actor.type == ActorType.APPLICATION)
    )
    assert instance is not None, "the instance actor exists from the first start"
    reported = [author.ap_id] if author.ap_id == object_ap_id else [author.ap_id, object_ap_id]
    flag = {
        "@context": AS_CONTEXT,
        "id": new_activity_id(instance.ap_id, "flag"),
        "type": "Flag",
        "actor": instance.ap_id,
        "object": reported,
        "content": comment,
        "to": [author.ap_id],
    }
    await publish(session, instance, flag, Audience(actors=[author]))
    session.add(AuditEntry(action="report forwarded", target=" ".join(reported), reason=comment))
    return True


async def _author_of(session: AsyncSession, ap_id: str) -> Actor | None:
    actor = await session.scalar(select(Actor).where(Actor.ap_id == ap_id))
    if actor is not None:
        return actor
    post = await find_post(session, ap_id)
    return await session.get(Actor, post.author_id) if post is not None else None
