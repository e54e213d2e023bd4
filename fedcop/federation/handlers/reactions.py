"""Inbound reactions: a `Like` or `Announce` of a story or comment here, and their `Undo`.

Each is counted once per actor; a like in a thread the group shared is announced by the group
to its Lemmy-family followers (handlers/content.py `share_in_group`).
"""

from __future__ import annotations

from sqlalchemy import delete, select

from fedcop.ap.checks import InboundActivity
from fedcop.ap.remote_content import CONTENT_TYPES, RemoteContent
from fedcop.federation.access import find_post
from fedcop.federation.dispatch import DispatchTable, HandlerContext, IgnoredError, RejectedError
from fedcop.federation.handlers.content import (
    count_reaction,
    followed_here,
    parse_post,
    record_reaction,
    share_in_group,
    store_story,
    story_of,
)
from fedcop.models import Actor, ActorType, Reaction

_CONTENT = sorted(CONTENT_TYPES)


async def on_like_or_announce(ctx: HandlerContext, activity: InboundActivity) -> None:
    if activity.object_type is not None and activity.object_type not in CONTENT_TYPES:
        # A Lemmy community announces its members' votes, moderation and the rest
        # (`AnnouncableActivities`, https://github.com/LemmyNet/lemmy/blob/main/crates/apub/activities/src/activity_lists.rs):
        # an embedded activity is not a post to count or fetch.
        raise IgnoredError(f"{activity.type} of a {activity.object_type} is not used here")
    actor = await ctx.actors.get(activity.actor)
    announced = await _announced_unknown_post(ctx, activity, actor)
    async with ctx.db.begin() as session:
        target = await find_post(session, activity.object_id or "")
        if target is None and announced is not None:
            author = await session.get(Actor, announced[1].id)
            assert author is not None
            group = actor if actor.type == ActorType.GROUP else None
            target = await store_story(session, announced[0], author, group)
        if target is None or target.deleted_at is not None:
            raise IgnoredError(f"{activity.object_id} is not a post here")
        new = await record_reaction(session, activity.type, activity.id, actor, target.ap_id)
        if new and activity.type == "Like":
            await share_in_group(session, await story_of(session, target), actor, activity.document)


async def _announced_unknown_post(
    ctx: HandlerContext, activity: InboundActivity, announcer: Actor
) -> tuple[RemoteContent, Actor] | None:
    """A boost, by someone followed here, of a top-level post we lack: fetched from its own
    server (an embedded copy is not trusted, only the announcer signed it) for timelines."""
    if activity.type != "Announce":
        return None
    async with ctx.db() as session:
        if await find_post(session, activity.object_id or "") is not None:
            return None
        if not await followed_here(session, announcer):
            return None
    data = parse_post(await ctx.actors.fetch_object(activity.object_id or ""))
    if data.in_reply_to is not None:
        return None  # replies are threaded where they belong, not collected from boosts
    return data, await ctx.actors.get(data.author)


async def undo_reaction(ctx: HandlerContext, activity: InboundActivity) -> bool:
    """Undo of a Like or Announce, by the reaction's id or its embedded copy."""
    async with ctx.db.begin() as session:
        reaction = await session.scalar(
            select(Reaction).where(Reaction.ap_id == activity.object_id)
        )
        if reaction is None:
            return False
        actor = await session.get(Actor, reaction.actor_id)
        if actor is None or actor.ap_id != activity.actor:
            raise RejectedError("only its author may undo a reaction")
        await session.execute(delete(Reaction).where(Reaction.id == reaction.id))
        target = await find_post(session, reaction.object_ap_id)
        if target is not None:
            count_reaction(target, reaction.type, -1)
            if reaction.type == "Like":
                await share_in_group(
                    session, await story_of(session, target), actor, activity.document
                )
        return True


async def on_undo_reaction(ctx: HandlerContext, activity: InboundActivity) -> None:
    if not await undo_reaction(ctx, activity):
        raise IgnoredError("no such reaction (already undone?)")


def register(table: DispatchTable) -> None:
    table.on("Like", None, *_CONTENT)(on_like_or_announce)
    table.on("Announce", None, *_CONTENT)(on_like_or_announce)
    table.on("Undo", "Like", "Announce")(on_undo_reaction)
