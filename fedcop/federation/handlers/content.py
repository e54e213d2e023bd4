"""Create, Update and Delete of posts (reactions to them: reactions.py).

A post addressed to a local group (by `audience`, `to`/`cc`, or a mention of the group, as
Guppe groups work) becomes a story in that group, and the group announces it to its followers
if the author may post there. Replies to stories and comments here join the thread and are
never announced: boosting replies floods timelines (lemmy#2224, mastodon#18069).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap.checks import InboundActivity
from fedcop.ap.remote import InvalidDocumentError
from fedcop.ap.remote_content import CONTENT_TYPES, RemoteContent, parse_content
from fedcop.federation import content as content_activities
from fedcop.federation import software
from fedcop.federation.access import find_post, thread_of
from fedcop.federation.addressing import reply_fits_thread, story_visibility
from fedcop.federation.dispatch import DispatchTable, HandlerContext, IgnoredError, RejectedError
from fedcop.federation.groups import is_blocked, may_post
from fedcop.federation.outbox import unlist
from fedcop.federation.policy import is_silenced
from fedcop.models import (
    SEEN_BY_ANYONE,
    Actor,
    ActorType,
    Comment,
    Follow,
    FollowState,
    Reaction,
    Story,
    utcnow,
)

_CONTENT = sorted(CONTENT_TYPES)


async def on_create(ctx: HandlerContext, activity: InboundActivity) -> None:
    document = await _embedded_or_fetched(ctx, activity)
    data = parse_post(document)
    if data.author != activity.actor:
        raise RejectedError("a post may only be created by its author")
    author = await ctx.actors.get(activity.actor)
    as_received = _with_object(activity, document)
    await _learn_followers_software(ctx, data)
    async with ctx.db.begin() as session:
        if data.in_reply_to is not None:
            story = await store_comment(session, data, author)
            await share_in_group(session, story, author, as_received)
            return
        group = await _addressed_group(session, data)
        if group is not None and not await may_post(session, group, author):
            group = None  # not theirs to post in: kept only if someone here follows them
        if group is None and not await followed_here(session, author):
            raise IgnoredError("a post for nobody here")
        story = await store_story(session, data, author, group)
        if group is not None and await _should_announce(session, group, story, author):
            announce_id = await content_activities.announce(
                session, group, story, author, as_received
            )
            await record_reaction(session, "Announce", announce_id, group, story.ap_id)


async def on_update(ctx: HandlerContext, activity: InboundActivity) -> None:
    document = await _embedded_or_fetched(ctx, activity)
    data = parse_post(document)
    if data.author != activity.actor:
        raise RejectedError("a post may only be updated by its author")
    async with ctx.db.begin() as session:
        target = await find_post(session, data.ap_id)
        if target is None:
            raise IgnoredError(f"{data.ap_id} is not stored here")
        author = await _require_author(session, target, activity.actor)
        target.content = data.content
        target.content_warning = data.content_warning
        target.edited_at = utcnow()
        if isinstance(target, Story):
            target.title, target.summary = data.title, data.summary
        await share_in_group(
            session, await story_of(session, target), author, _with_object(activity, document)
        )


async def delete_post(ctx: HandlerContext, activity: InboundActivity) -> None:
    """Delete of a post (called from the Delete handler for anything that is not an actor)."""
    async with ctx.db.begin() as session:
        target = await find_post(session, activity.object_id or "")
        if target is None:
            raise IgnoredError(f"{activity.object_id} is not stored here")
        author = await _require_author(session, target, activity.actor)
        if target.deleted_at is None:
            await share_in_group(
                session, await story_of(session, target), author, activity.document
            )
            await mark_deleted(session, target)


async def mark_deleted(session: AsyncSession, post: Story | Comment) -> None:
    """A remote post gone at its server: content dropped, out of the outboxes, the group's
    boost of a story taken back, a reply's thread one reply shorter."""
    if isinstance(post, Story) and (group := await _local_group_of(session, post)):
        await content_activities.take_back_boost(session, group, post)
    post.deleted_at, post.content = utcnow(), ""
    await unlist(session, post.ap_id)
    if isinstance(post, Comment):
        thread = await session.get(Story, post.story_id)
        if thread is not None:
            thread.comment_count = max(0, thread.comment_count - 1)


async def remove_everything_of(session: AsyncSession, author: Actor) -> None:
    """An account that was deleted takes its posts and reactions with it, as a Delete of each
    would (Mastodon's DeleteAccountService removes the statuses of an account it is told is
    gone). Stories the group boosted are taken back; counts drop with the replies and likes."""
    stories = await session.scalars(
        select(Story).where(Story.author_id == author.id, Story.deleted_at.is_(None))
    )
    comments = await session.scalars(
        select(Comment).where(Comment.author_id == author.id, Comment.deleted_at.is_(None))
    )
    posts: list[Story | Comment] = [*stories.all(), *comments.all()]
    for post in posts:
        await mark_deleted(session, post)
    reactions = await session.scalars(select(Reaction).where(Reaction.actor_id == author.id))
    for reaction in reactions.all():
        target = await find_post(session, reaction.object_ap_id)
        if target is not None:
            count_reaction(target, reaction.type, -1)
        await session.delete(reaction)


# -- the group shares -------------------------------------------------------------------------


async def _learn_followers_software(ctx: HandlerContext, data: RemoteContent) -> None:
    """Before a group shares a post or a reply in its thread, learn what its followers'
    servers run (bounded in time; see federation/software.py), so that a new Lemmy follower
    gets the form it reads."""
    async with ctx.db() as session:
        if data.in_reply_to is None:
            group = await _addressed_group(session, data)
        else:
            story = await thread_of(session, data.in_reply_to)
            group = await session.get(Actor, story.group_id) if story and story.group_id else None
    if group is not None and group.local:
        await software.learn_follower_software(ctx.db, ctx.actors, group)


async def share_in_group(
    session: AsyncSession, story: Story | None, actor: Actor, activity: dict[str, Any]
) -> None:
    """FEP-1b12: a member's reply, edit, deletion, like (or its undo) in a thread the group
    shared is announced by the group to its Lemmy-family followers, which learn of them no
    other way. Not for members-only or removed stories, blocked people or silenced servers."""
    if story is None or story.group_id is None or story.removed_at is not None:
        return
    if story.visibility not in SEEN_BY_ANYONE:
        return
    group = await session.get(Actor, story.group_id)
    if (
        group is None
        or not group.local
        or await content_activities.group_boost(session, group, story) is None
    ):
        return
    if await is_blocked(session, group, actor):
        return
    if actor.domain and await is_silenced(session, actor.domain):
        return
    await content_activities.announce_activity(session, group, activity)


async def _local_group_of(session: AsyncSession, story: Story) -> Actor | None:
    group = await session.get(Actor, story.group_id) if story.group_id else None
    return group if group is not None and group.local else None


async def story_of(session: AsyncSession, post: Story | Comment) -> Story | None:
    """The story a stored post belongs to: itself, or a comment's thread."""
    return post if isinstance(post, Story) else await session.get(Story, post.story_id)


# -- storing ---------------------------------------------------------------------------------


async def store_story(
    session: AsyncSession, data: RemoteContent, author: Actor, group: Actor | None
) -> Story:
    existing = await session.scalar(select(Story).where(Story.ap_id == data.ap_id))
    if existing is not None:
        # Never let a Create take over an id someone else owns (CVE-2024-37903).
        if existing.author_id != author.id:
            raise RejectedError(f"{data.ap_id} already belongs to someone else")
        return existing
    visibility = story_visibility(data, author, group)
    if visibility is None:
        raise IgnoredError("a post to named people only: fedcop keeps no private messages")
    story = Story(
        ap_id=data.ap_id, local=False, type=data.type, author_id=author.id,
        group_id=group.id if group else None, title=data.title, summary=data.summary,
        content=data.content, content_warning=data.content_warning, url=data.url,
        visibility=visibility, tags=data.tags, remote_attachments=data.attachments,
        published_at=data.published or utcnow(), like_count=0, announce_count=0, comment_count=0,
    )  # fmt: skip
    session.add(story)
    await session.flush()
    return story


async def store_comment(session: AsyncSession, data: RemoteContent, author: Actor) -> Story | None:
    """Store a reply in its thread; the thread's story when the group may share the reply."""
    existing = await session.scalar(select(Comment).where(Comment.ap_id == data.ap_id))
    if existing is not None:
        if existing.author_id != author.id:
            raise RejectedError(f"{data.ap_id} already belongs to someone else")
        # A local comment is stored before its Create reaches the group's inbox (here): the
        # group still shares it. A remote one seen again was shared the first time.
        return await session.get(Story, existing.story_id) if existing.local else None
    story = await thread_of(session, data.in_reply_to or "")
    if story is None:
        raise IgnoredError(f"a reply to {data.in_reply_to}, which is not here")
    group = await session.get(Actor, story.group_id) if story.group_id else None
    if not reply_fits_thread(data, story, group):
        raise IgnoredError("a reply addressed more narrowly than its thread, shown to all")
    session.add(
        Comment(
            ap_id=data.ap_id, local=False, author_id=author.id, story_id=story.id,
            in_reply_to=data.in_reply_to, content=data.content,
            content_warning=data.content_warning, visibility=data.visibility,
            published_at=data.published or utcnow(), like_count=0,
        )
    )  # fmt: skip
    story.comment_count += 1
    return story


async def record_reaction(
    session: AsyncSession, kind: str, ap_id: str, actor: Actor, object_ap_id: str
) -> bool:
    """Count a reaction once per actor, type and object; False if it was counted already."""
    exists = await session.scalar(
        select(Reaction.id).where(
            Reaction.actor_id == actor.id,
            Reaction.type == kind,
            Reaction.object_ap_id == object_ap_id,
        )
    )
    if exists is not None:
        return False  # a repeat changes nothing
    session.add(Reaction(ap_id=ap_id, type=kind, actor_id=actor.id, object_ap_id=object_ap_id))
    target = await find_post(session, object_ap_id)
    if target is not None:
        count_reaction(target, kind, +1)
    return True


# -- finding ---------------------------------------------------------------------------------


async def _addressed_group(session: AsyncSession, data: RemoteContent) -> Actor | None:
    candidates = list(dict.fromkeys(data.recipients + data.mentions))
    if not candidates:
        return None
    group: Actor | None = await session.scalar(
        select(Actor)
        .where(Actor.ap_id.in_(candidates), Actor.local, Actor.type == ActorType.GROUP)
        .order_by(Actor.id)
        .limit(1)
    )
    return group


async def followed_here(session: AsyncSession, author: Actor) -> bool:
    follow = await session.scalar(
        select(Follow.id)
        .join(Actor, Actor.id == Follow.follower_id)
        .where(Follow.followed_id == author.id, Follow.state == FollowState.ACCEPTED, Actor.local)
        .limit(1)
    )
    return follow is not None


async def _should_announce(
    session: AsyncSession, group: Actor, story: Story, author: Actor
) -> bool:
    if story.visibility not in SEEN_BY_ANYONE or story.deleted_at:
        return False
    if author.domain and await is_silenced(session, author.domain):
        return False  # a silenced server's posts are kept, never amplified
    if not await may_post(session, group, author):
        return False
    return await content_activities.group_boost(session, group, story) is None


async def _require_author(
    session: AsyncSession, target: Story | Comment, actor_ap_id: str
) -> Actor:
    author = await session.get(Actor, target.author_id)
    if author is None or author.ap_id != actor_ap_id:
        raise RejectedError("only its author may change or delete a post")
    return author


async def _embedded_or_fetched(ctx: HandlerContext, activity: InboundActivity) -> Any:
    embedded = activity.document.get("object")
    if isinstance(embedded, dict):
        return embedded
    # Only the id was sent: fetch the post from its own server (same origin was checked).
    return await ctx.actors.fetch_object(activity.object_id or "")


def _with_object(activity: InboundActivity, document: Any) -> dict[str, Any]:
    """The activity as received; when it named its object only by id, with the object fetched
    from its origin embedded, because Lemmy reads an announced Create's object only embedded."""
    if isinstance(activity.document.get("object"), dict):
        return activity.document
    return {**activity.document, "object": document}


def parse_post(document: Any) -> RemoteContent:
    try:
        return parse_content(document)
    except InvalidDocumentError as exc:
        raise RejectedError(str(exc)) from exc


def count_reaction(target: Story | Comment, kind: str, delta: int) -> None:
    """Keep a post's like (or a story's share) count in step with its reactions."""
    if kind == "Like":
        target.like_count = max(0, target.like_count + delta)
    elif isinstance(target, Story):
        target.announce_count = max(0, target.announce_count + delta)


def register(table: DispatchTable) -> None:
    table.on("Create", *_CONTENT)(on_create)
    table.on("Update", *_CONTENT)(on_update)
