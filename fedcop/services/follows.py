"""Use cases for following: local people and groups following anyone, and approving followers."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from fedcop.ap import activities
from fedcop.db import SessionMaker
from fedcop.errors import ConflictError, NotFoundError, ValidationError
from fedcop.federation import follows
from fedcop.federation.outbox import Audience, publish
from fedcop.federation.remote_actors import RemoteActors
from fedcop.models import Actor, Follow, FollowState
from fedcop.services.actors import find_local_actor


@dataclass(frozen=True, slots=True)
class FollowSummary:
    id: int
    follower: str
    followed: str
    state: str


async def follow(db: SessionMaker, actors: RemoteActors, local: str, target: str) -> FollowSummary:
    """`local` (a username) follows `target` (@user@host or an actor URL) by sending Follow."""
    followed = await _resolve(actors, target)
    async with db.begin() as session:
        follower = await _local(session, local)
        if followed.id == follower.id:
            raise ValidationError("an actor cannot follow itself")
        existing = await follows.find_follow(
            session, ap_id=None, follower_id=follower.id, followed_id=followed.id
        )
        if existing is not None:
            raise ConflictError(
                f"{follower.handle} already follows {followed.ap_id} ({existing.state})"
            )
        activity_id = activities.new_activity_id(follower.ap_id, "follow")
        row = Follow(ap_id=activity_id, follower_id=follower.id, followed_id=followed.id)
        session.add(row)
        await session.flush()
        activity = activities.follow(follower.ap_id, followed.ap_id, activity_id)
        await publish(
            session, follower, activity, Audience(actors=[followed], shared_inboxes=False)
        )
        return FollowSummary(row.id, follower.ap_id, followed.ap_id, row.state)


async def unfollow(db: SessionMaker, actors: RemoteActors, local: str, target: str) -> None:
    followed = await _resolve(actors, target)
    async with db.begin() as session:
        follower = await _local(session, local)
        existing = await follows.find_follow(
            session, ap_id=None, follower_id=follower.id, followed_id=followed.id
        )
        if existing is None:
            raise NotFoundError(f"{follower.handle} does not follow {followed.ap_id}")
        undo = activities.undo(
            follower.ap_id, activities.follow(follower.ap_id, followed.ap_id, existing.ap_id)
        )
        await session.execute(delete(Follow).where(Follow.id == existing.id))
        await publish(session, follower, undo, Audience(actors=[followed], shared_inboxes=False))


async def pending(db: SessionMaker) -> list[FollowSummary]:
    """Follow requests waiting for a local actor's approval."""
    async with db() as session:
        rows = (await session.execute(_pending_query())).all()
    return [FollowSummary(f.id, a.ap_id, b.ap_id, f.state) for f, a, b in rows]


async def decide(db: SessionMaker, follow_id: int, *, approve: bool) -> FollowSummary:
    async with db.begin() as session:
        row = (await session.execute(_pending_query().where(Follow.id == follow_id))).first()
        if row is None:
            raise NotFoundError(f"no pending follow request {follow_id}")
        request, follower, followed = row
        if approve:
            await follows.accept(session, request, follower, followed)
        else:
            await follows.reject(session, request, follower, followed)
        state = FollowState.ACCEPTED if approve else "rejected"
        return FollowSummary(request.id, follower.ap_id, followed.ap_id, state)


def _pending_query() -> Select[Follow, Actor, Actor]:
    follower, followed = aliased(Actor), aliased(Actor)
    return (
        select(Follow, follower, followed)
        .join(follower, Follow.follower_id == follower.id)
        .join(followed, Follow.followed_id == followed.id)
        .where(Follow.state == FollowState.PENDING, followed.local)
        .order_by(Follow.id)
    )


async def _resolve(actors: RemoteActors, target: str) -> Actor:
    if target.startswith(("http://", "https://")):
        return await actors.get(target)
    return await actors.by_handle(target)


async def _local(session: AsyncSession, username: str) -> Actor:
    actor = await find_local_actor(session, username)
    if actor is None:
        raise NotFoundError(f"no local person or group named {username!r}")
    return actor
