"""Follow, Accept, Reject and Undo{Follow} (INTEROP §6)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap.activities import object_id_of
from fedcop.ap.checks import InboundActivity
from fedcop.federation import follows
from fedcop.federation.dispatch import DispatchTable, HandlerContext, IgnoredError, RejectedError
from fedcop.federation.groups import is_blocked
from fedcop.federation.handlers import reactions
from fedcop.models import Actor, ActorType, Follow, FollowState


async def on_follow(ctx: HandlerContext, activity: InboundActivity) -> None:
    follower = await ctx.actors.get(activity.actor)
    async with ctx.db.begin() as session:
        target = await session.scalar(
            select(Actor).where(Actor.ap_id == activity.object_id, Actor.local)
        )
        if target is None or target.deleted_at is not None:
            raise IgnoredError(f"{activity.object_id} is not an actor on this server")
        if await is_blocked(session, target, follower):
            await follows.refuse(session, activity.document, follower, target)
            return
        follow = await follows.find_follow(
            session, ap_id=None, follower_id=follower.id, followed_id=target.id
        )
        if follow is None:
            follow = Follow(ap_id=activity.id, follower_id=follower.id, followed_id=target.id)
            session.add(follow)
        else:
            # A repeated Follow (the follower lost our Accept): answer it again, with its id.
            follow.ap_id = activity.id
        await session.flush()
        if follow.state == FollowState.ACCEPTED or not target.manually_approves_followers:
            await follows.accept(session, follow, follower, target)


async def on_accept(ctx: HandlerContext, activity: InboundActivity) -> None:
    async with ctx.db.begin() as session:
        follow, _ = await _our_follow(session, activity)
        follow.state = FollowState.ACCEPTED


async def on_reject(ctx: HandlerContext, activity: InboundActivity) -> None:
    async with ctx.db.begin() as session:
        follow, _ = await _our_follow(session, activity)
        await session.execute(delete(Follow).where(Follow.id == follow.id))


async def _our_follow(session: AsyncSession, activity: InboundActivity) -> tuple[Follow, Actor]:
    """The Follow by a local actor that this Accept/Reject answers; only its target may."""
    responder = await session.scalar(select(Actor).where(Actor.ap_id == activity.actor))
    if responder is None:
        raise IgnoredError(f"{activity.actor} was never followed from here")
    embedded = activity.document.get("object")
    follower_id = object_id_of(embedded.get("actor")) if isinstance(embedded, dict) else None
    query = (
        select(Follow)
        .join(Actor, Follow.follower_id == Actor.id)
        .where(Actor.local, Follow.followed_id == responder.id)
    )
    if follower_id is not None:
        query = query.where(Actor.ap_id == follower_id)
    candidates = list((await session.scalars(query)).all())
    match = next((f for f in candidates if f.ap_id == activity.object_id), None)
    if match is None and follower_id is not None and len(candidates) == 1:
        match = candidates[0]  # re-serialised Follow with an id we did not mint
    if match is None:
        raise RejectedError(f"no follow of {activity.actor} answered by {activity.object_id}")
    return match, responder


async def on_undo_follow(ctx: HandlerContext, activity: InboundActivity) -> None:
    async with ctx.db.begin() as session:
        follower = await session.scalar(select(Actor).where(Actor.ap_id == activity.actor))
        if follower is None:
            raise IgnoredError(f"{activity.actor} follows nobody here")
        embedded = activity.document.get("object")
        target_id = object_id_of(embedded.get("object")) if isinstance(embedded, dict) else None
        target = await session.scalar(select(Actor).where(Actor.ap_id == target_id))
        follow = await follows.find_follow(
            session,
            ap_id=activity.object_id,
            follower_id=follower.id,
            followed_id=target.id if target is not None else -1,
        )
        if follow is None or follow.follower_id != follower.id:
            raise IgnoredError("no such follow (already undone?)")
        await session.execute(delete(Follow).where(Follow.id == follow.id))
        followed = await session.get(Actor, follow.followed_id)
        if followed is not None and followed.type == ActorType.GROUP:
            await follows.end_membership(session, followed, follower)


async def on_undo_by_id(ctx: HandlerContext, activity: InboundActivity) -> None:
    """Undo naming only an id: a Like or Announce we stored, else a follow."""
    if not await reactions.undo_reaction(ctx, activity):
        await on_undo_follow(ctx, activity)


def register(table: DispatchTable) -> None:
    table.on("Follow", None, "Person", "Group", "Application", "Service", "Organization")(on_follow)
    table.on("Accept", None, "Follow")(on_accept)
    table.on("Reject", None, "Follow")(on_reject)
    # Undo of a bare id: only follows can be undone so far, so look among them.
    table.on("Undo", "Follow")(on_undo_follow)
    table.on("Undo", None)(on_undo_by_id)
