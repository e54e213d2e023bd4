"""Update and Delete of actors: profile and key changes, and accounts that are gone."""

from __future__ import annotations

from sqlalchemy import delete, select

from fedcop.ap.checks import InboundActivity
from fedcop.ap.remote import ACTOR_TYPES
from fedcop.federation import follows
from fedcop.federation.dispatch import DispatchTable, HandlerContext, IgnoredError, RejectedError
from fedcop.federation.handlers import content
from fedcop.models import Actor, GroupMember, utcnow


async def on_update_actor(ctx: HandlerContext, activity: InboundActivity) -> None:
    if activity.object_id != activity.actor:
        raise RejectedError("an actor may only update itself")
    # The embedded copy is not trusted: the actor is fetched again from its own server.
    await ctx.actors.get(activity.actor, refresh=True)


async def on_delete(ctx: HandlerContext, activity: InboundActivity) -> None:
    if activity.object_id != activity.actor:
        await content.delete_post(ctx, activity)
        return
    async with ctx.db.begin() as session:
        actor = await session.scalar(
            select(Actor).where(Actor.ap_id == activity.actor, Actor.local.is_(False))
        )
        if actor is None:
            raise IgnoredError(f"{activity.actor} was never known here")
        actor.deleted_at = actor.deleted_at or utcnow()
        await follows.remove_all_for(session, actor)
        await session.execute(delete(GroupMember).where(GroupMember.actor_id == actor.id))
        await content.remove_everything_of(session, actor)
    ctx.actors.forget_key(actor.public_key_id or "")


def register(table: DispatchTable) -> None:
    table.on("Update", *sorted(ACTOR_TYPES))(on_update_actor)
    table.on("Delete", None, "Tombstone", *sorted(ACTOR_TYPES))(on_delete)
