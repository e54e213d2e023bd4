"""Reports: a local person tells this instance's moderators about a story, comment or actor.

Reports are stored for moderators only. Forwarding a report to the object's home server as a
`Flag` activity (what Mastodon and Lemmy do) is not built yet: `forwarded` stays false until it
is, so reports made now can be forwarded later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.db import SessionMaker
from fedcop.errors import NotFoundError, ValidationError
from fedcop.federation.access import may_see
from fedcop.models import Actor, Comment, Report, Story

MAX_COMMENT = 1000


@dataclass(frozen=True, slots=True)
class ReportSummary:
    id: int
    object: str
    comment: str
    created_at: datetime
    forwarded: bool


async def report(
    db: SessionMaker, reporter_id: int, object_ap_id: str, comment: str
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
        await session.flush()
        return ReportSummary(row.id, row.object_ap_id, row.comment, row.created_at, row.forwarded)


async def _is_known(session: AsyncSession, ap_id: str, viewer_id: int) -> bool:
    if await session.scalar(select(Actor.id).where(Actor.ap_id == ap_id)) is not None:
        return True
    story = await session.scalar(select(Story).where(Story.ap_id == ap_id))
    if story is None:
        comment = await session.scalar(select(Comment).where(Comment.ap_id == ap_id))
        story = await session.get(Story, comment.story_id) if comment is not None else None
    return story is not None and await may_see(session, story, viewer_id)
