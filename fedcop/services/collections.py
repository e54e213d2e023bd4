"""Reading a local actor's collections: followers, following, outbox, moderators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import BindParameter, Row, Select, bindparam, func, or_, select

from fedcop.db import SessionMaker, engine_of
from fedcop.federation.policy import domains_with
from fedcop.models import (
    Actor,
    BlockSeverity,
    Follow,
    FollowState,
    GroupMember,
    GroupRole,
    GroupVisibility,
    MembershipState,
    OutboxActivity,
    Story,
    Visibility,
)


async def group_moderator_ids(db: SessionMaker, group: Actor) -> list[str]:
    """The owners and moderators of a group, oldest first, as actor ids."""
    query = (
        select(Actor.ap_id)
        .join(GroupMember, GroupMember.actor_id == Actor.id)
        .where(
            GroupMember.group_id == group.id,
            GroupMember.state == MembershipState.ACTIVE,
            GroupMember.role.in_([GroupRole.OWNER, GroupRole.MODERATOR]),
        )
        .order_by(GroupMember.created_at, Actor.id)
    )
    async with db() as session:
        return list((await session.scalars(query)).all())


PAGE_SIZE = 20


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    next_max_id: int | None  # pass as max_id for the following (older) page


async def count(db: SessionMaker, actor_id: int, name: str) -> int:
    async with engine_of(db).connect() as connection:
        return await connection.scalar(_COUNT_STATEMENTS[name], {"actor": actor_id}) or 0


async def page(db: SessionMaker, actor_id: int, name: str, max_id: int | None) -> Page:
    """Newest first, keyset-paginated on the row id (stable while rows are added)."""
    statement = _PAGE_STATEMENTS[(name, max_id is not None)]
    parameters = {"actor": actor_id, "max_id": max_id, "limit": PAGE_SIZE + 1}
    async with engine_of(db).connect() as connection:
        rows = (await connection.execute(statement, parameters)).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    items = [_item(name, row.value) for row in rows]
    return Page(items, rows[-1].key if more and rows else None)


_KEY = {"followers": Follow.id, "following": Follow.id, "outbox": OutboxActivity.id}


def _base(name: str) -> Select[int, Any]:
    """The collection's (key, value) rows for the actor bound as `:actor`."""
    actor_id: BindParameter[int] = bindparam("actor")
    if name == "outbox":
        # `body`, the exact text every delivery POSTed, not the JSON column: orjson parses it
        # several times faster than the column's json.loads (the outbox page's main cost).
        return select(OutboxActivity.id.label("key"), OutboxActivity.body.label("value")).where(
            OutboxActivity.actor_id == actor_id, OutboxActivity.public
        )
    mine, theirs = (
        (Follow.followed_id, Follow.follower_id)
        if name == "followers"
        else (Follow.follower_id, Follow.followed_id)
    )
    return (
        select(Follow.id.label("key"), Actor.ap_id.label("value"))
        .join(Actor, Actor.id == theirs)
        .where(mine == actor_id, Follow.state == FollowState.ACCEPTED, Actor.deleted_at.is_(None))
    )


def _page_statement(name: str, *, older: bool) -> Select[int, Any]:
    query = _base(name)
    if older:
        query = query.where(_KEY[name] < bindparam("max_id"))
    return query.order_by(_KEY[name].desc()).limit(bindparam("limit"))


# Built once and run on a bare connection: building the query per request and running it
# through an ORM session cost more than the page itself (an empty followers page was served
# at ~650/s, `bench reads`). Pages are keyed by (collection, whether a max_id is given).
_PAGE_STATEMENTS = {
    (name, older): _page_statement(name, older=older) for name in _KEY for older in (False, True)
}
_COUNT_STATEMENTS = {
    name: select(func.count()).select_from(_base(name).subquery()) for name in _KEY
}


def _item(name: str, value: Any) -> Any:
    if name == "outbox":
        activity = orjson.loads(value)
        activity.pop("@context", None)  # the page's own context covers its items
        return activity
    return value


def counts_only(actor: Actor | Row[Any]) -> bool:
    """A private group shows how many, never who (its members are its business)."""
    return actor.group_visibility == GroupVisibility.PRIVATE


async def public_stories(db: SessionMaker, group: Actor, limit: int = 20) -> list[Story]:
    """The newest stories anyone may read in a group (none for private groups)."""
    if counts_only(group):
        return []
    async with db() as session:
        silenced = await domains_with(session, BlockSeverity.SILENCE)
    # A silenced domain hides its subdomains too, as blocks do (federation/policy.py).
    hidden = [or_(Actor.domain == d, Actor.domain.endswith(f".{d}")) for d in silenced]
    query = (
        select(Story)
        .join(Actor, Actor.id == Story.author_id)
        .where(
            Story.group_id == group.id,
            or_(Actor.domain.is_(None), ~or_(*hidden)) if hidden else Actor.id.is_not(None),
            Story.visibility.in_([Visibility.PUBLIC, Visibility.UNLISTED]),
            Story.deleted_at.is_(None),
            Story.removed_at.is_(None),
        )
        .order_by(Story.published_at.desc(), Story.id.desc())
        .limit(limit)
    )
    async with db() as session:
        return list((await session.scalars(query)).all())
