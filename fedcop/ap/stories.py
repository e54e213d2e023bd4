"""Stories and comments as ActivityStreams objects, and their addressing (INTEROP §7).

A story is an `Article`. Mastodon shows an Article as its `name`, its `summary` and a link to
its `url`, and drops `content` (https://github.com/mastodon/mastodon/blob/main/app/lib/activitypub/parser/status_parser.rb,
`converted_object_type?`; glitch-soc#2315), so the summary is the teaser most of the fediverse
reads and must stand on its own. With a content warning the teaser is withheld: the summary
becomes the warning and `sensitive` is set, so readers choose to click through.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fedcop.ap.context import AS_CONTEXT, PUBLIC
from fedcop.models import Comment, Story, Visibility

CONTENT_CONTEXT: list[Any] = [
    AS_CONTEXT,
    {"sensitive": "as:sensitive", "Hashtag": "as:Hashtag"},
]


@dataclass(frozen=True, slots=True)
class Addressing:
    to: list[str]
    cc: list[str]


def addressing(
    visibility: str, author_followers: str, group_id: str | None, group_followers: str | None
) -> Addressing:
    """to/cc for a visibility: Public in `to` is public, in `cc` unlisted (INTEROP §7)."""
    group = [group_id] if group_id else []
    if visibility == Visibility.PUBLIC:
        return Addressing([PUBLIC, *group], [author_followers])
    if visibility == Visibility.UNLISTED:
        return Addressing([*group], [PUBLIC, author_followers])
    if visibility == Visibility.MEMBERS and group_id and group_followers:
        return Addressing([group_id], [group_followers])
    return Addressing([author_followers, *group], [])


def hashtag(base_url: str, tag: str) -> dict[str, str]:
    return {"type": "Hashtag", "name": f"#{tag}", "href": f"{base_url}/tags/{quote(tag)}"}


def story_to_ap(
    story: Story,
    *,
    author_id: str,
    group_id: str | None,
    address: Addressing,
    base_url: str,
    attachments: list[dict[str, Any]],
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": CONTENT_CONTEXT,
        "id": story.ap_id,
        "type": story.type,
        "attributedTo": author_id,
        "name": story.title,
        "summary": _teaser(story),
        "content": story.content,
        "mediaType": "text/html",
        "url": story.url or story.ap_id,
        "published": _iso(story.published_at),
        "to": address.to,
        "cc": address.cc,
        "tag": [hashtag(base_url, tag) for tag in story.tags],
        "attachment": attachments,
        "sensitive": bool(story.content_warning),
        "context": story.ap_id,  # the thread: replies carry the same context
    }
    if story.source is not None:
        document["source"] = {"content": story.source, "mediaType": "text/markdown"}
    if group_id:
        document["audience"] = group_id  # FEP-1b12: the group the story belongs to
    if story.edited_at is not None:
        document["updated"] = _iso(story.edited_at)
    return document


def comment_to_ap(
    comment: Comment,
    *,
    author_id: str,
    story_ap_id: str,
    address: Addressing,
    group_id: str | None,
    mentions: list[dict[str, str]],
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": CONTENT_CONTEXT,
        "id": comment.ap_id,
        "type": "Note",
        "attributedTo": author_id,
        "inReplyTo": comment.in_reply_to,
        "context": story_ap_id,
        "content": comment.content,
        "published": _iso(comment.published_at),
        "to": address.to,
        "cc": address.cc,
        "sensitive": bool(comment.content_warning),
        "url": comment.ap_id,
        "tag": mentions,
    }
    if comment.content_warning:
        document["summary"] = html.escape(comment.content_warning)  # AS2 summary is HTML
    if comment.source is not None:
        document["source"] = {"content": comment.source, "mediaType": "text/markdown"}
    if group_id:
        document["audience"] = group_id
    if comment.edited_at is not None:
        document["updated"] = _iso(comment.edited_at)
    return document


def tombstone(ap_id: str, former_type: str, deleted: Any) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": ap_id,
        "type": "Tombstone",
        "formerType": former_type,
        "deleted": _iso(deleted),
    }


def _teaser(story: Story) -> str:
    if story.content_warning:
        return f"<p>Content warning: {html.escape(story.content_warning)}</p>"
    return story.summary


def _iso(when: Any) -> str:
    return str(when.strftime("%Y-%m-%dT%H:%M:%SZ"))
