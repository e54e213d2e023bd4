"""Rows as the API's JSON shapes (the schemas in `schemas.py` describe exactly these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fedcop.ap.urls import LocalUrls
from fedcop.models import Actor, Comment, GroupMember
from fedcop.services.groups import Membership
from fedcop.services.timeline import GroupEntry, StoryEntry, StoryPage


def when(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def actor(row: Actor, urls: LocalUrls) -> dict[str, Any]:
    # Local rows keep no domain (see models/actor.py), so their handle is built here.
    handle = urls.handle(row.username) if row.local else row.handle
    return {"ap_id": row.ap_id, "handle": handle, "name": row.name}


def membership(made: Membership) -> dict[str, Any]:
    return {"group": made.group, "member": made.member, "role": made.role, "state": made.state}


def group(entry: GroupEntry, urls: LocalUrls, viewer_ap_id: str) -> dict[str, Any]:
    row, mine = entry.group, entry.membership
    return {
        "username": row.username,
        "handle": urls.handle(row.username),
        "ap_id": row.ap_id,
        "name": row.name,
        "summary": row.summary,
        "rules": row.rules,
        "topics": row.topics or [],
        "posting": row.posting_policy or "members",
        "visibility": row.group_visibility,
        "member_count": entry.member_count,
        "icon": row.icon_url,
        "image": row.image_url,
        "membership": _own_membership(row, mine, viewer_ap_id) if mine else None,
    }


def _own_membership(row: Actor, mine: GroupMember, viewer_ap_id: str) -> dict[str, Any]:
    return {"group": row.ap_id, "member": viewer_ap_id, "role": mine.role, "state": mine.state}


def story_summary(entry: StoryEntry, urls: LocalUrls) -> dict[str, Any]:
    story = entry.story
    return {
        "id": story.id,
        "ap_id": story.ap_id,
        "url": story.url or story.ap_id,
        "author": actor(entry.author, urls),
        "group": actor(entry.group, urls) if entry.group else None,
        "title": story.title,
        "summary": story.summary,
        "content_warning": story.content_warning,
        "visibility": story.visibility,
        "tags": story.tags,
        "published_at": when(story.published_at),
        "edited_at": when(story.edited_at),
        "counts": {
            "likes": story.like_count,
            "shares": story.announce_count,
            "comments": story.comment_count,
        },
    }


def story(entry: StoryEntry, urls: LocalUrls, viewer_id: int) -> dict[str, Any]:
    document = story_summary(entry, urls)
    document["content"] = entry.story.content
    # The Markdown is what an editor needs; it is the author's, so only they get it.
    document["source"] = entry.story.source if entry.author.id == viewer_id else None
    return document


def page(result: StoryPage, urls: LocalUrls) -> dict[str, Any]:
    return {
        "items": [story_summary(entry, urls) for entry in result.entries],
        "next_max_id": result.next_max_id,
    }


def comment(row: Comment) -> dict[str, Any]:
    return {
        "ap_id": row.ap_id,
        "in_reply_to": row.in_reply_to,
        "content": row.content,
        "content_warning": row.content_warning,
        "published_at": when(row.published_at),
    }
