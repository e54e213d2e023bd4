"""A group's avatar (`icon`) and header (`image`), set by its owners and moderators.

Uploads go through the media service like story images: decoded, re-encoded from the pixels
alone (no EXIF, no GPS), stored under their hash and served with their real image type. The
group's actor then names the image's URL, its followers get `Update{Group}` so their servers
show the new picture, and the change is written to the audit log.
"""

from __future__ import annotations

import enum
from pathlib import Path

from fedcop.ap import activities
from fedcop.ap.actors import actor_to_ap
from fedcop.ap.media import media_url
from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker
from fedcop.federation.outbox import Audience, publish
from fedcop.models import Actor, Media, utcnow
from fedcop.services.groups import local_group, require_moderator
from fedcop.services.media import check_alt, find_media, store_image
from fedcop.services.moderation import record


class GroupImage(enum.StrEnum):
    ICON = "icon"  # the avatar
    IMAGE = "image"  # the header

    @property
    def description(self) -> str:
        return "avatar" if self is GroupImage.ICON else "header image"


async def set_image(
    db: SessionMaker, urls: LocalUrls, media_dir: Path, group_name: str, moderator_name: str,
    kind: GroupImage, data: bytes, alt: str | None = None,
) -> Actor:  # fmt: skip
    """Store `data` as the group's avatar or header; returns the updated group."""
    async with db() as session:  # who may, before any decoding
        group = await local_group(session, group_name)
        await require_moderator(session, group, moderator_name)
    text = check_alt(alt) if alt else f"The {kind.description} of {group.name or group.username}"
    media = await store_image(db, media_dir, group.id, data, text)
    return await _point_at(
        db, urls, group_name, moderator_name, kind, image_url(urls, group, media)
    )


async def remove_image(
    db: SessionMaker, urls: LocalUrls, group_name: str, moderator_name: str, kind: GroupImage
) -> Actor:
    return await _point_at(db, urls, group_name, moderator_name, kind, None)


def image_url(urls: LocalUrls, group: Actor, media: Media) -> str:
    """Served from under the group's own URL (see web/group_images.py), never as AS2."""
    return media_url(urls, media).replace(f"{urls.base_url}/media/", f"{group.ap_id}/images/", 1)


async def current_image(
    db: SessionMaker, urls: LocalUrls, group_name: str, media_id: int
) -> Media | None:
    """The image, if it is this group's avatar or header now; old ones are not served."""
    media = await find_media(db, media_id)
    if media is None:
        return None
    async with db() as session:
        group = await local_group(session, group_name)
    if media.owner_id != group.id:
        return None
    return media if image_url(urls, group, media) in (group.icon_url, group.image_url) else None


async def _point_at(
    db: SessionMaker, urls: LocalUrls, group_name: str, moderator_name: str,
    kind: GroupImage, url: str | None,
) -> Actor:  # fmt: skip
    async with db.begin() as session:
        group = await local_group(session, group_name)
        moderator = await require_moderator(session, group, moderator_name)
        if kind is GroupImage.ICON:
            group.icon_url = url
        else:
            group.image_url = url
        group.updated_at = utcnow()
        update = activities.update_of_actor(actor_to_ap(group, urls), urls.followers(group.ap_id))
        await publish(session, group, update, Audience(followers=True), public=True)
        action = f"set {kind.description}" if url else f"remove {kind.description}"
        await record(session, moderator, action, url or group.ap_id, group.ap_id)
    return group
