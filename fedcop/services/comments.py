"""Use cases for conversation: comments on stories (local or remote), likes and shares."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap import activities
from fedcop.ap.context import AS_CONTEXT, PUBLIC
from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker
from fedcop.errors import ConflictError, NotFoundError, ValidationError
from fedcop.federation.access import find_post, may_see
from fedcop.federation.comments import comment_document, comment_recipients
from fedcop.federation.outbox import Audience, publish
from fedcop.models import SEEN_BY_ANYONE, Actor, Comment, Reaction, Story, Visibility, utcnow
from fedcop.security.html import render_markdown
from fedcop.services.actors import find_local_actor

MAX_COMMENT = 10_000


async def comment(
    db: SessionMaker, urls: LocalUrls, author_name: str, in_reply_to: str, body: str,
    content_warning: str | None = None,
) -> Comment:  # fmt: skip
    """Reply to a story or comment known here; the reply goes to the story's author, its
    group and the commenter's followers."""
    if not 1 <= len(body.strip()) <= MAX_COMMENT:
        raise ValidationError(f"a comment is 1 to {MAX_COMMENT} characters")
    async with db.begin() as session:
        author = await _person(session, author_name)
        story, _ = await _thread(session, in_reply_to, author)
        ap_id = f"{urls.base_url}/comments/{secrets.token_hex(8)}"
        row = Comment(
            ap_id=ap_id, local=True, author_id=author.id, story_id=story.id,
            in_reply_to=in_reply_to, content=render_markdown(body), source=body,
            content_warning=(content_warning or "").strip() or None,
            visibility=story.visibility, published_at=utcnow(), like_count=0,
        )  # fmt: skip
        session.add(row)
        story.comment_count += 1
        await session.flush()
        recipients = await comment_recipients(session, row)
        document = await comment_document(session, urls, row)
        create = _activity("Create", f"{ap_id}#create", author, document)
        open_thread = story.visibility in SEEN_BY_ANYONE
        audience = Audience(followers=open_thread, actors=recipients,
                            shared_inboxes=open_thread)  # fmt: skip
        await publish(
            session, author, create, audience, public=story.visibility == Visibility.PUBLIC
        )
        return row


async def react(db: SessionMaker, kind: str, person_name: str, object_ap_id: str) -> Reaction:
    """A local person likes (`Like`) or shares (`Announce`) a story or comment."""
    if kind not in ("Like", "Announce"):
        raise ValidationError("a reaction is a Like or an Announce")
    async with db.begin() as session:
        person = await _person(session, person_name)
        story, target_author = await _thread(session, object_ap_id, person)
        if story.visibility not in SEEN_BY_ANYONE and kind == "Announce":
            raise ValidationError("only public stories can be shared")
        exists = await session.scalar(
            select(Reaction).where(
                Reaction.actor_id == person.id, Reaction.type == kind,
                Reaction.object_ap_id == object_ap_id,
            )
        )  # fmt: skip
        if exists is not None:
            raise ConflictError(f"already {kind.lower()}d")
        activity_id = activities.new_activity_id(person.ap_id, kind)
        reaction = Reaction(
            ap_id=activity_id, type=kind, actor_id=person.id, object_ap_id=object_ap_id
        )
        session.add(reaction)
        target = await _post(session, object_ap_id)
        if kind == "Like":
            target.like_count += 1
        elif isinstance(target, Story):
            target.announce_count += 1
        share = kind == "Announce"
        followers = LocalUrls.followers(person.ap_id)
        activity = {
            "@context": AS_CONTEXT, "id": activity_id, "type": kind, "actor": person.ap_id,
            "object": object_ap_id,
            "to": [PUBLIC] if share else [target_author.ap_id],
            "cc": [followers, target_author.ap_id] if share else [],
        }  # fmt: skip
        others = [target_author] if target_author.id != person.id else []
        audience = Audience(followers=share, actors=others)
        await publish(session, person, activity, audience, public=share)
        return reaction


async def _thread(session: AsyncSession, ap_id: str, viewer: Actor) -> tuple[Story, Actor]:
    """The story a post belongs to, and the post's author; NotFound if unknown or unseen."""
    target = await _post(session, ap_id)
    story = await session.get(Story, target.story_id) if isinstance(target, Comment) else target
    if (
        story is None
        or story.deleted_at is not None
        or not await may_see(session, story, viewer.id)
    ):
        raise NotFoundError(f"{ap_id} is not a story or comment here")
    author = await session.get(Actor, target.author_id)
    assert author is not None
    return story, author


async def _post(session: AsyncSession, ap_id: str) -> Story | Comment:
    found = await find_post(session, ap_id)
    if found is None or found.deleted_at is not None:
        raise NotFoundError(f"{ap_id} is not a story or comment here")
    return found


def _activity(
    kind: str, activity_id: str, actor: Actor, document: dict[str, object]
) -> dict[str, object]:
    context = document.pop("@context")
    return {"@context": context, "id": activity_id, "type": kind, "actor": actor.ap_id,
            "object": document, "to": document["to"], "cc": document["cc"]}  # fmt: skip


async def _person(session: AsyncSession, username: str) -> Actor:
    person = await find_local_actor(session, username)
    if person is None or person.type != "Person":
        raise NotFoundError(f"no local person named {username!r}")
    return person
