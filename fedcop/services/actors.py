"""Use cases for local actors: people, community groups and the instance actor."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap.discovery import USERNAME_MAX_LENGTH, USERNAME_RE, NodeUsage
from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker
from fedcop.errors import ConflictError, NotFoundError, ValidationError
from fedcop.federation.follows import follow_locally
from fedcop.models import (
    Actor,
    ActorType,
    Comment,
    GroupMember,
    GroupRole,
    GroupVisibility,
    LocalKey,
    Story,
    utcnow,
)
from fedcop.security.html import render_markdown
from fedcop.security.keys import generate_key_pair


@dataclass(frozen=True, slots=True)
class NewActor:
    """What the command line and the API need to tell a person after creating an actor."""

    ap_id: str
    handle: str
    type: str


def _topics(topics: Sequence[str]) -> list[str]:
    cleaned = [t.strip().lstrip("#").lower() for t in topics if t.strip()]
    if len(cleaned) > 10 or not all(t.replace("_", "").isalnum() and len(t) <= 64 for t in cleaned):
        raise ValidationError("up to 10 topics of letters, digits and underscores")
    return list(dict.fromkeys(cleaned))


def normalise_username(username: str) -> str:
    """Lower-case and check a handle against Mastodon's rule, so every peer can address it."""
    if not 1 <= len(username) <= USERNAME_MAX_LENGTH:
        raise ValidationError(
            f"username {username!r} must be 1 to {USERNAME_MAX_LENGTH} characters long"
        )
    if not USERNAME_RE.match(username):
        raise ValidationError(
            f"username {username!r} may use only letters, digits and underscores, with single "
            "dots or dashes between them (Mastodon cannot address other names)"
        )
    return username.lower()


async def create_person(
    db: SessionMaker, urls: LocalUrls, username: str, *, name: str = "", admin: bool = False
) -> NewActor:
    actor = _new_local_actor(urls, ActorType.PERSON, normalise_username(username), name)
    actor.is_admin = admin
    actor.last_active_at = utcnow()
    return await _insert(db, urls, actor)


async def create_group(
    db: SessionMaker,
    urls: LocalUrls,
    username: str,
    *,
    name: str,
    owner: str | None = None,
    visibility: str = GroupVisibility.OPEN,
    description: str = "",
    rules: str = "",
    topics: Sequence[str] = (),
    posting_policy: str = "members",
) -> NewActor:
    try:
        chosen = GroupVisibility(visibility)
    except ValueError:
        allowed = ", ".join(v.value for v in GroupVisibility)
        raise ValidationError(f"visibility {visibility!r} must be one of {allowed}") from None
    if posting_policy not in ("members", "followers"):
        raise ValidationError("posting policy must be 'members' or 'followers'")
    actor = _new_local_actor(urls, ActorType.GROUP, normalise_username(username), name)
    actor.group_visibility = chosen
    actor.summary = render_markdown(description)
    actor.rules = render_markdown(rules) if rules.strip() else None
    actor.topics = _topics(topics)
    actor.posting_policy = posting_policy
    actor.manually_approves_followers = chosen != GroupVisibility.OPEN
    # A private group must not be suggested or indexed anywhere.
    actor.discoverable = actor.indexable = chosen != GroupVisibility.PRIVATE
    return await _insert(db, urls, actor, owner_username=owner)


async def ensure_instance_actor(db: SessionMaker, urls: LocalUrls, host: str) -> Actor:
    """The instance actor (an `Application`) that signs fetches made for the server itself."""
    async with db() as session:
        existing = await session.scalar(select(Actor).where(Actor.ap_id == urls.instance_actor))
    if existing is not None:
        return existing
    actor = _new_local_actor(urls, ActorType.APPLICATION, host, host)
    # Nobody follows the instance actor; Mastodon's equivalent locks it the same way.
    actor.manually_approves_followers = True
    actor.discoverable = actor.indexable = False
    with contextlib.suppress(ConflictError):  # another process created it first
        await _insert(db, urls, actor)
    async with db() as session:
        return (
            await session.scalars(select(Actor).where(Actor.ap_id == urls.instance_actor))
        ).one()


async def find_local_actor(session: AsyncSession, username: str) -> Actor | None:
    return await session.scalar(
        select(Actor).where(Actor.local, func.lower(Actor.username) == username.lower())
    )


async def get_local_actor(db: SessionMaker, username: str) -> Actor:
    async with db() as session:
        actor = await find_local_actor(session, username)
    if actor is None:
        raise NotFoundError(f"no local person or group named {username!r}")
    return actor


async def node_usage(db: SessionMaker) -> NodeUsage:
    now = utcnow()
    people = (
        select(func.count())
        .select_from(Actor)
        .where(Actor.local, Actor.type == ActorType.PERSON, Actor.deleted_at.is_(None))
    )
    async with db() as session:
        total = await session.scalar(people) or 0
        month = await session.scalar(people.where(Actor.last_active_at >= now - timedelta(days=30)))
        half = await session.scalar(people.where(Actor.last_active_at >= now - timedelta(days=180)))
        posts = 0
        for kind in (Story, Comment):  # what Mastodon counts as statuses: stories and replies
            posts += (
                await session.scalar(
                    select(func.count())
                    .select_from(kind)
                    .where(kind.local, kind.deleted_at.is_(None), kind.removed_at.is_(None))
                )
                or 0
            )
    return NodeUsage(total, month or 0, half or 0, local_posts=posts)


def _new_local_actor(urls: LocalUrls, actor_type: ActorType, username: str, name: str) -> Actor:
    ap_id = urls.actor(actor_type, username)
    return Actor(
        ap_id=ap_id,
        type=actor_type,
        local=True,
        username=username,
        domain=None,
        name=name or username,
        summary="",
        profile_fields=[],
        manually_approves_followers=False,
        discoverable=True,
        indexable=True,
        is_admin=False,
        public_key_id=urls.key_id(ap_id),
    )


async def _insert(
    db: SessionMaker, urls: LocalUrls, actor: Actor, *, owner_username: str | None = None
) -> NewActor:
    keys = generate_key_pair()  # before the transaction: key generation takes ~50 ms
    actor.public_key_pem = keys.public_pem
    try:
        async with db.begin() as session:
            if await find_local_actor(session, actor.username) is not None:
                raise ConflictError(f"the name {actor.username!r} is already taken")
            owner = await _find_owner(session, owner_username)
            session.add(actor)
            await session.flush()
            session.add(LocalKey(actor_id=actor.id, private_key_pem=keys.private_pem))
            if owner is not None:
                session.add(GroupMember(group_id=actor.id, actor_id=owner.id, role=GroupRole.OWNER))
                await follow_locally(session, owner, actor)  # so the owner sees its stories
    except IntegrityError as exc:  # a concurrent insert won the race for the name
        raise ConflictError(f"the name {actor.username!r} is already taken") from exc
    return NewActor(ap_id=actor.ap_id, handle=urls.handle(actor.username), type=actor.type)


async def _find_owner(session: AsyncSession, username: str | None) -> Actor | None:
    if username is None:
        return None
    owner = await find_local_actor(session, username)
    if owner is None or owner.type != ActorType.PERSON:
        raise NotFoundError(f"no local person named {username!r} to own the group")
    return owner
