"""Use cases for stories: publishing, editing and deleting, with information governance.

Before a story is published its author confirms it holds no patient-identifiable information.
A story told by or about a person who uses services records that person's consent and its
scope; the story's visibility may never be wider than the consent. Withdrawing consent deletes
the story everywhere it went.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

import fedcop.federation.content as content_activities
from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker
from fedcop.errors import NotFoundError, PermissionDeniedError, ValidationError
from fedcop.federation.groups import may_post
from fedcop.federation.remote_actors import RemoteActors
from fedcop.models import (
    Actor,
    ActorType,
    Consent,
    ConsentScope,
    GroupVisibility,
    Story,
    Visibility,
    utcnow,
)
from fedcop.security.html import render_markdown
from fedcop.services.actors import find_local_actor
from fedcop.services.groups import local_group, require_moderator

MAX_TITLE = 200
MAX_SUMMARY = 500
MAX_BODY = 50_000
MAX_TAGS = 10
# What each group visibility allows its stories to be.
_ALLOWED = {
    GroupVisibility.OPEN: {Visibility.PUBLIC, Visibility.UNLISTED},
    GroupVisibility.APPROVAL: {Visibility.PUBLIC, Visibility.UNLISTED, Visibility.MEMBERS},
    GroupVisibility.PRIVATE: {Visibility.MEMBERS},
}
# The widest visibility each consent scope permits.
_CONSENTED = {
    ConsentScope.GROUP: {Visibility.MEMBERS},
    ConsentScope.NETWORK: {Visibility.MEMBERS, Visibility.FOLLOWERS, Visibility.UNLISTED},
    ConsentScope.PUBLIC: set(Visibility),
}


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    given_by: str
    scope: str
    given_at: datetime


@dataclass(frozen=True, slots=True)
class StoryDraft:
    title: str
    summary: str  # plain text: the teaser
    body: str  # Markdown
    pii_confirmed: bool
    visibility: str = Visibility.PUBLIC
    tags: list[str] = field(default_factory=list)
    content_warning: str | None = None
    consent: ConsentRecord | None = None
    image_ids: list[int] = field(default_factory=list)


async def publish(
    db: SessionMaker,
    urls: LocalUrls,
    author_name: str,
    group_name: str,
    draft: StoryDraft,
    *,
    actors: RemoteActors | None = None,
) -> Story:
    """Publish to a group here (by name) or on another server (`@name@host`, with `actors`)."""
    _check_draft(draft)
    remote = await _remote_group(actors, group_name)
    async with db.begin() as session:
        author = await _local_author(session, author_name)
        group = remote or await local_group(session, group_name)
        if not await may_post(session, group, author):
            raise ValidationError(f"{author.handle} may not post in {group.handle}")
        _check_visibility(group, draft)
        story = _new_story(urls, author, group, draft)
        session.add(story)
        await session.flush()
        if draft.consent is not None:
            session.add(_consent(story, author, draft.consent))
        await content_activities.attach_media(session, story, author, draft.image_ids)
        await content_activities.send_create(session, urls, story, author, group)
    return story


async def edit(
    db: SessionMaker, urls: LocalUrls, story_id: str, editor: str, draft: StoryDraft
) -> Story:
    _check_draft(draft)
    async with db.begin() as session:
        story, author, group = await _own_story(session, story_id, editor)
        if group is not None:
            _check_visibility(group, draft)
        if draft.visibility != story.visibility:
            raise ValidationError("a story's visibility cannot change once published")
        _apply(story, draft)
        story.edited_at = utcnow()
        await content_activities.send_update(session, urls, story, author, group)
    return story


async def delete(db: SessionMaker, urls: LocalUrls, story_id: str, by: str) -> None:
    async with db.begin() as session:
        story, author, group = await _own_story(session, story_id, by)
        await content_activities.delete_story(session, urls, story, author, group)


async def withdraw_consent(db: SessionMaker, urls: LocalUrls, story_id: str, by: str) -> None:
    """Consent withdrawn: recorded, and the story deleted everywhere it went."""
    async with db.begin() as session:
        story, author, group = await _own_story(session, story_id, by)
        await session.execute(
            update(Consent)
            .where(Consent.story_id == story.id, Consent.withdrawn_at.is_(None))
            .values(withdrawn_at=utcnow())
        )
        await content_activities.delete_story(session, urls, story, author, group)


async def _remote_group(actors: RemoteActors | None, name: str) -> Actor | None:
    """A group on another server; its own server decides membership when the story arrives."""
    is_url = name.startswith(("http://", "https://"))
    if not (is_url or (name.startswith("@") and "@" in name[1:])):
        return None  # a plain name: a group here
    if actors is None:
        raise ValidationError("publishing to a group on another server needs federation")
    group = await (actors.get(name) if is_url else actors.by_handle(name))
    if group.local:
        return None
    if group.type != ActorType.GROUP:
        raise ValidationError(f"{name} is not a community group")
    return group


def _check_draft(draft: StoryDraft) -> None:
    if not draft.pii_confirmed:
        raise ValidationError(
            "confirm that the story contains no patient-identifiable information before publishing"
        )
    if not 1 <= len(draft.title.strip()) <= MAX_TITLE:
        raise ValidationError(f"a story needs a title of 1 to {MAX_TITLE} characters")
    if not 1 <= len(draft.summary.strip()) <= MAX_SUMMARY:
        raise ValidationError(
            f"a story needs a summary of 1 to {MAX_SUMMARY} characters: most of the fediverse "
            "shows only the title and this summary"
        )
    if len(draft.body) > MAX_BODY:
        raise ValidationError(f"a story's body is limited to {MAX_BODY} characters")
    if len(draft.tags) > MAX_TAGS or not all(_is_tag(tag) for tag in draft.tags):
        raise ValidationError(f"up to {MAX_TAGS} tags of letters, digits and underscores")
    if draft.visibility not in set(Visibility) - {Visibility.DIRECT}:
        raise ValidationError(f"unknown visibility {draft.visibility!r}")


def _check_visibility(group: Actor, draft: StoryDraft) -> None:
    # A remote group's rules are its server's; from here only public sharing is safe to offer.
    allowed = (
        _ALLOWED[GroupVisibility(group.group_visibility or GroupVisibility.OPEN)]
        if group.local
        else {Visibility.PUBLIC, Visibility.UNLISTED}
    )
    if draft.visibility not in allowed:
        choices = ", ".join(sorted(allowed))
        raise ValidationError(f"stories in {group.handle} may be: {choices}")
    if draft.consent is not None:
        try:
            scope = ConsentScope(draft.consent.scope)
        except ValueError:
            raise ValidationError("consent scope must be group, network or public") from None
        if draft.visibility not in _CONSENTED[scope]:
            raise ValidationError(
                f"consent was given for {scope.value} sharing; the story cannot be "
                f"{draft.visibility}"
            )


def _is_tag(tag: str) -> bool:
    return 0 < len(tag) <= 64 and tag.replace("_", "").isalnum()


def _new_story(urls: LocalUrls, author: Actor, group: Actor, draft: StoryDraft) -> Story:
    ap_id = f"{urls.base_url}/stories/{secrets.token_hex(8)}"
    story = Story(
        ap_id=ap_id,
        local=True,
        type="Article",
        author_id=author.id,
        group_id=group.id,
        url=ap_id,
        visibility=draft.visibility,
        pii_confirmed_at=utcnow(),
        published_at=utcnow(),
        like_count=0,
        announce_count=0,
        comment_count=0,
        remote_attachments=[],
    )
    _apply(story, draft)
    return story


def _apply(story: Story, draft: StoryDraft) -> None:
    story.title = draft.title.strip()
    story.summary = f"<p>{html.escape(draft.summary.strip())}</p>"
    story.source = draft.body
    story.content = render_markdown(draft.body)
    story.tags = [tag.lower() for tag in dict.fromkeys(draft.tags)]
    story.content_warning = (draft.content_warning or "").strip() or None
    story.pii_confirmed_at = utcnow()


def _consent(story: Story, author: Actor, record: ConsentRecord) -> Consent:
    if not record.given_by.strip():
        raise ValidationError("record who gave consent")
    return Consent(
        story_id=story.id,
        given_by=record.given_by.strip()[:255],
        scope=record.scope,
        given_at=record.given_at,
        recorded_by_id=author.id,
    )


async def _local_author(session: AsyncSession, username: str) -> Actor:
    author = await find_local_actor(session, username)
    if author is None or author.type != "Person":
        raise NotFoundError(f"no local person named {username!r}")
    return author


async def _own_story(
    session: AsyncSession, story_id: str, username: str
) -> tuple[Story, Actor, Actor | None]:
    """The live local story `story_id`, if `username` wrote it or moderates its group."""
    story = await session.scalar(select(Story).where(Story.ap_id == story_id, Story.local))
    if story is None or story.deleted_at is not None:
        raise NotFoundError(f"no story {story_id} here")
    author = await session.get(Actor, story.author_id)
    group = await session.get(Actor, story.group_id) if story.group_id else None
    assert author is not None
    if author.username != username.lower():
        if group is None:
            raise PermissionDeniedError("only its author may change this story")
        await require_moderator(session, group, username)
    return story, author, group
