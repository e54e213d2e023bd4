"""Replies on the wire: a comment as an AS2 `Note`, addressed as it was when it was sent.

Built from the database both when the reply is published and when its id is fetched, so a
server that looks the reply up (Mastodon does, to thread a reply to it) reads what its
followers were sent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap.context import PUBLIC
from fedcop.ap.stories import Addressing, comment_to_ap
from fedcop.ap.urls import LocalUrls
from fedcop.federation.access import find_post
from fedcop.models import SEEN_BY_ANYONE, Actor, ActorType, Comment, Story


async def comment_document(
    session: AsyncSession, urls: LocalUrls, comment: Comment
) -> dict[str, Any]:
    story = await session.get(Story, comment.story_id)
    author = await session.get(Actor, comment.author_id)
    assert story is not None
    assert author is not None
    group = await session.get(Actor, story.group_id) if story.group_id else None
    recipients = await comment_recipients(session, comment)
    return comment_to_ap(
        comment,
        author_id=author.ap_id,
        story_ap_id=story.ap_id,
        address=comment_addressing(urls, author, recipients, comment.visibility),
        group_id=group.ap_id if group else None,
        mentions=[_mention(urls, a) for a in recipients if a.type == ActorType.PERSON],
    )


async def comment_recipients(session: AsyncSession, comment: Comment) -> list[Actor]:
    """Who a reply is addressed to by name: the author of the post it answers and the
    thread's group, leaving out the replier."""
    story = await session.get(Story, comment.story_id)
    group = await session.get(Actor, story.group_id) if story and story.group_id else None
    parent = await find_post(session, comment.in_reply_to)
    parent_author = await session.get(Actor, parent.author_id) if parent is not None else None
    return [a for a in (parent_author, group) if a is not None and a.id != comment.author_id]


def comment_addressing(
    urls: LocalUrls, author: Actor, recipients: list[Actor], visibility: str
) -> Addressing:
    named = [a.ap_id for a in recipients]
    if visibility not in SEEN_BY_ANYONE:
        # A thread for members or for its author's followers: the reply goes to the story's
        # author and group alone, never wider than the thread (not Public, not our followers).
        return Addressing(named, [])
    return Addressing([PUBLIC], [urls.followers(author.ap_id), *named])


def _mention(urls: LocalUrls, actor: Actor) -> dict[str, str]:
    """The person replied to, as a `Mention`: Mastodon makes a remote post's mentions, and so
    its notifications, from `Mention` tags alone (`process_mention` in
    https://github.com/mastodon/mastodon/blob/main/app/lib/activitypub/activity/create.rb)."""
    name = urls.handle(actor.username) if actor.local else actor.handle
    return {"type": "Mention", "href": actor.ap_id, "name": name}
