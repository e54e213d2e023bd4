"""Stories on the wire: the activities a story's life sends, inside the caller's transaction.

Public stories: the author's `Create{Article}` goes to the author's followers and to the group;
the group (FEP-1b12) then `Announce`s it to its followers — to Lemmy-family servers the author's
activity itself (FEP-1b12's form), to the rest the story's id, which Mastodon shows as a boost
(INTEROP §8). Members-only stories never touch a shared inbox
and are not announced: the author's `Create` goes straight to each member's own inbox.
Edits and deletions go to everyone the story reached: the author's and the group's followers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap import activities
from fedcop.ap.context import AS_CONTEXT, PUBLIC
from fedcop.ap.media import media_to_ap
from fedcop.ap.remote import host_of
from fedcop.ap.stories import Addressing, addressing, story_to_ap, tombstone
from fedcop.ap.urls import LocalUrls
from fedcop.errors import ValidationError
from fedcop.federation import software
from fedcop.federation.outbox import Audience, publish, unlist
from fedcop.models import SEEN_BY_ANYONE, Actor, Reaction, Story, Visibility, utcnow
from fedcop.models.media import Media

MAX_IMAGES = 4


async def attach_media(
    session: AsyncSession, story: Story, author: Actor, image_ids: list[int]
) -> None:
    if len(image_ids) > MAX_IMAGES:
        raise ValidationError(f"a story carries at most {MAX_IMAGES} images")
    if not image_ids:
        return
    owned = await session.scalars(
        select(Media.id).where(Media.id.in_(image_ids), Media.owner_id == author.id)
    )
    if set(owned.all()) != set(image_ids):
        raise ValidationError("images must be uploaded by the story's author")
    await session.execute(update(Media).where(Media.id.in_(image_ids)).values(story_id=story.id))


async def story_document(session: AsyncSession, urls: LocalUrls, story: Story) -> dict[str, Any]:
    """The story as an AS2 object, from the database."""
    author = await session.get(Actor, story.author_id)
    group = await session.get(Actor, story.group_id) if story.group_id else None
    assert author is not None
    images = (
        await session.scalars(select(Media).where(Media.story_id == story.id).order_by(Media.id))
    ).all()
    attachments = (
        [media_to_ap(m, urls) for m in images] if story.local else story.remote_attachments
    )
    return story_to_ap(
        story,
        author_id=author.ap_id,
        group_id=group.ap_id if group else None,
        address=_addressing(urls, story, author, group),
        base_url=urls.base_url,
        attachments=attachments,
    )


async def send_create(
    session: AsyncSession, urls: LocalUrls, story: Story, author: Actor, group: Actor
) -> None:
    document = await story_document(session, urls, story)
    create = _wrap("Create", f"{story.ap_id}#create", author, document)
    if story.visibility == Visibility.MEMBERS:
        audience = Audience(followers_of=[group], shared_inboxes=False)
    else:
        audience = Audience(followers=True, actors=[group])
    await publish(session, author, create, audience, public=_is_public(story))


async def send_update(
    session: AsyncSession, urls: LocalUrls, story: Story, author: Actor, group: Actor | None
) -> None:
    document = await story_document(session, urls, story)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
    update_activity = _wrap("Update", f"{story.ap_id}#update-{stamp}", author, document)
    await publish(
        session, author, update_activity, _everyone_reached(story, group), public=_is_public(story)
    )


async def delete_story(
    session: AsyncSession, urls: LocalUrls, story: Story, author: Actor, group: Actor | None
) -> None:
    """Mark the story deleted (its id answers 410 with a Tombstone) and tell everyone."""
    story.deleted_at = utcnow()
    story.content = story.summary = story.title = ""
    story.source = None
    await unlist(session, story.ap_id)
    document = tombstone(story.ap_id, story.type, story.deleted_at)
    document.pop("@context")
    delete = _wrap("Delete", f"{story.ap_id}#delete", author, document)
    delete["to"], delete["cc"] = [PUBLIC], []
    await publish(session, author, delete, _everyone_reached(story, group), public=False)


async def announce(
    session: AsyncSession, group: Actor, story: Story, author: Actor, activity: dict[str, Any]
) -> str:
    """The group shares a member's top-level story with its followers, in the form each
    follower's server understands (`federation/software.py`): Lemmy-family servers get the
    member's `activity` announced as received (FEP-1b12), everyone else the story's id, which
    Mastodon shows as a boost (INTEROP §8). Returns the boost's id (the group's reaction)."""
    wrapped = await _activity_announce_domains(session, group)
    boost = _announcement(group, story.ap_id, extra_cc=[author.ap_id])
    await publish(
        session, group, boost, Audience(followers=True, except_domains=wrapped), public=True
    )
    if wrapped:
        await _announce_to(session, group, activity, wrapped)
    return str(boost["id"])


async def announce_activity(
    session: AsyncSession, group: Actor, activity: dict[str, Any], *, listed: bool = True
) -> int:
    """FEP-1b12 only: a member's `Update`, `Delete`, `Like`, `Undo` or reply, wrapped for the
    Lemmy-family followers. Mastodon has no use for them (a boost of a reply floods timelines,
    lemmy#2224), so other servers get nothing. `listed`: shown in the group's outbox (not a
    moderator's action). Returns how many servers were addressed."""
    wrapped = await _activity_announce_domains(session, group)
    if wrapped:
        await _announce_to(session, group, activity, wrapped, listed=listed)
    return len(wrapped)


async def announce_removal(
    session: AsyncSession, group: Actor, moderator: Actor, post_ap_id: str
) -> None:
    """A moderator took a post out of the group: Lemmy-family followers get the moderator's
    `Delete` with a `summary`, which Lemmy reads as a removal rather than the author's
    deletion, announced by the group
    (https://github.com/LemmyNet/lemmy/blob/main/crates/apub/activities/src/deletion/delete.rs).
    The summary is empty: the moderator's reason stays in this server's audit log (Lemmy
    would show it in its public modlog), and the removal is not listed in the outbox."""
    removal = {
        "@context": AS_CONTEXT,
        "id": activities.new_activity_id(moderator.ap_id, "delete"),
        "type": "Delete",
        "actor": moderator.ap_id,
        "object": post_ap_id,
        "summary": "",
        "audience": group.ap_id,
        "to": [PUBLIC],
        "cc": [group.ap_id],
    }
    await announce_activity(session, group, removal, listed=False)


async def send_ban(session: AsyncSession, group: Actor, moderator: Actor, person: Actor) -> None:
    """A moderator banned a person from the group. Lemmy reads a ban as the moderator's
    `Block` with the community as `target`, announced by the community to its followers and
    sent to the banned person's server
    (https://github.com/LemmyNet/lemmy/blob/main/crates/apub/activities/src/block/block_user.rs);
    it refuses a Block whose actor is the group. Everyone else gets the group's own `Block`,
    which Mastodon files as the group blocking the person. As with removals, the reason stays
    in the audit log, and the ban is not listed in the group's outbox."""
    ban = {
        "@context": AS_CONTEXT,
        "id": activities.new_activity_id(moderator.ap_id, "block"),
        "type": "Block",
        "actor": moderator.ap_id,
        "object": person.ap_id,
        "target": group.ap_id,
        "removeData": False,
        "audience": group.ap_id,
        "to": [PUBLIC],
        "cc": [group.ap_id],
    }
    await announce_activity(session, group, ban, listed=False)
    person_domain = host_of(person.shared_inbox_url or person.inbox_url or person.ap_id)
    if await software.activity_announce_domains(session, {person_domain}):
        await publish(session, moderator, ban, Audience(actors=[person], shared_inboxes=False))
        return
    block = {
        "@context": AS_CONTEXT,
        "id": activities.new_activity_id(group.ap_id, "block"),
        "type": "Block",
        "actor": group.ap_id,
        "object": person.ap_id,
        "target": group.ap_id,
        "to": [person.ap_id],
    }
    await publish(session, group, block, Audience(actors=[person], shared_inboxes=False))


async def group_boost(session: AsyncSession, group: Actor, story: Story) -> Reaction | None:
    """The group's own boost of a story (its `Announce`, recorded as its reaction)."""
    boost: Reaction | None = await session.scalar(
        select(Reaction).where(
            Reaction.actor_id == group.id,
            Reaction.type == "Announce",
            Reaction.object_ap_id == story.ap_id,
        )
    )
    return boost


async def take_back_boost(session: AsyncSession, group: Actor, story: Story) -> None:
    """The group takes back its boost of a story (deleted by its author, or removed by a
    moderator), if it boosted it: `Undo{Announce}` for the servers that got the boost form
    (Mastodon never sees the author's Delete otherwise); Lemmy-family servers got the `Delete`
    itself announced. The boost is no longer counted."""
    boost = await group_boost(session, group, story)
    if boost is None:
        return
    await _undo_announce(session, group, story, boost.ap_id)
    await session.delete(boost)
    story.announce_count = max(0, story.announce_count - 1)


async def _undo_announce(
    session: AsyncSession, group: Actor, story: Story, announce_id: str
) -> None:
    wrapped = await _activity_announce_domains(session, group)
    undo = {
        "@context": AS_CONTEXT,
        "id": activities.new_activity_id(group.ap_id, "undo"),
        "type": "Undo",
        "actor": group.ap_id,
        "object": {
            "id": announce_id, "type": "Announce", "actor": group.ap_id, "object": story.ap_id,
        },
        "to": [PUBLIC],
        "cc": [LocalUrls.followers(group.ap_id)],
    }  # fmt: skip
    await publish(session, group, undo, Audience(followers=True, except_domains=wrapped))


async def _activity_announce_domains(session: AsyncSession, group: Actor) -> frozenset[str]:
    domains = await software.follower_domains(session, group)
    return await software.activity_announce_domains(session, domains)


async def _announce_to(
    session: AsyncSession, group: Actor, activity: dict[str, Any], domains: frozenset[str],
    *, listed: bool = True,
) -> None:  # fmt: skip
    # The activity is wrapped exactly as received: FEP-1b12 requires it, so that followers can
    # check it against the member's own copy (https://codeberg.org/fediverse/fep/src/branch/main/fep/1b12/fep-1b12.md).
    wrapped = _announcement(group, activity)
    await publish(
        session, group, wrapped, Audience(followers=True, only_domains=domains), public=listed
    )


def _announcement(
    group: Actor, announced: str | dict[str, Any], extra_cc: list[str] | None = None
) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": activities.new_activity_id(group.ap_id, "announce"),
        "type": "Announce",
        "actor": group.ap_id,
        "object": announced,
        "to": [PUBLIC],
        "cc": [LocalUrls.followers(group.ap_id), *(extra_cc or [])],
        "published": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _everyone_reached(story: Story, group: Actor | None) -> Audience:
    """Where the story's Create went, for its Update and Delete: the author's followers and
    the group's. A group on another server is a recipient itself (its followers are its own
    server's to reach: it announces what it receives, FEP-1b12); a local group's followers
    are reached directly."""
    groups = [group] if group is not None else []
    remote_groups = [g for g in groups if not g.local]
    if story.visibility == Visibility.MEMBERS:
        return Audience(actors=remote_groups, followers_of=groups, shared_inboxes=False)
    return Audience(followers=True, actors=remote_groups, followers_of=groups)


def _wrap(kind: str, activity_id: str, author: Actor, document: dict[str, Any]) -> dict[str, Any]:
    context = document.pop("@context", AS_CONTEXT)
    return {
        "@context": context,
        "id": activity_id,
        "type": kind,
        "actor": author.ap_id,
        "object": document,
        "to": document.get("to", []),
        "cc": document.get("cc", []),
        "published": document.get("published"),
    }


def _addressing(urls: LocalUrls, story: Story, author: Actor, group: Actor | None) -> Addressing:
    return addressing(
        story.visibility,
        urls.followers(author.ap_id) if author.local else (author.followers_url or author.ap_id),
        group.ap_id if group else None,
        urls.followers(group.ap_id) if group is not None and group.local else None,
    )


def _is_public(story: Story) -> bool:
    return story.visibility in SEEN_BY_ANYONE
