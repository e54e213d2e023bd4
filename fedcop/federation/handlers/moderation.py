"""Flag: reports from other servers about people or posts here (Mastodon sends them from its
instance actor, with the reported actor and posts in `object` and the reason in `content`:
https://docs.joinmastodon.org/spec/activitypub/#Flag)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from fedcop.ap.activities import object_id_of
from fedcop.ap.checks import InboundActivity
from fedcop.federation.dispatch import DispatchTable, HandlerContext, IgnoredError
from fedcop.models import Actor, AuditEntry, Comment, Report, Story
from fedcop.security.html import to_text

MAX_REPORTED_OBJECTS = 20


async def on_flag(ctx: HandlerContext, activity: InboundActivity) -> None:
    reporter = await ctx.actors.get(activity.actor)
    reported = _ids(activity.document.get("object"))
    comment = to_text(str(activity.document.get("content") or ""))[:1000]
    async with ctx.db.begin() as session:
        ours = [ap_id for ap_id in reported if await _is_ours(session, ap_id)]
        if not ours:
            raise IgnoredError("a report about nothing on this server")
        for ap_id in ours:
            session.add(Report(reporter_id=reporter.id, object_ap_id=ap_id, comment=comment))
        session.add(AuditEntry(moderator_id=None, action="report received", target=" ".join(ours),
                               scope=reporter.ap_id, reason=comment))  # fmt: skip


async def _is_ours(session: Any, ap_id: str) -> bool:
    for model in (Actor, Story, Comment):
        found = await session.scalar(select(model.id).where(model.ap_id == ap_id, model.local))
        if found is not None:
            return True
    return False


def _ids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [found for item in items[:MAX_REPORTED_OBJECTS] if (found := object_id_of(item))]


def register(table: DispatchTable) -> None:
    table.on("Flag", None, "Person", "Group", "Note", "Article")(on_flag)
