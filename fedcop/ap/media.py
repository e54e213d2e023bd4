"""Images attached to stories, as ActivityStreams `Image` objects."""

from __future__ import annotations

from typing import Any

from fedcop.ap.urls import LocalUrls
from fedcop.models.media import ImageType, Media

# The term a story's @context must define for `blurhash` (Mastodon's namespace, "toot").
BLURHASH_TERM = {"blurhash": "toot:blurhash"}


def media_url(urls: LocalUrls, media: Media) -> str:
    """The file's URL. The name after the id is cosmetic: the route looks up the id alone."""
    extension = ImageType(media.content_type).extension
    return f"{urls.base_url}/media/{media.id}/{media.sha256[:16]}.{extension}"


def media_to_ap(media: Media, urls: LocalUrls) -> dict[str, Any]:
    """An attachment as Mastodon reads it: `name` is the alt text, `blurhash` the placeholder."""
    document: dict[str, Any] = {
        "type": "Image",
        "mediaType": media.content_type,
        "url": media_url(urls, media),
        "name": media.alt,
        "width": media.width,
        "height": media.height,
    }
    if media.blurhash:
        document["blurhash"] = media.blurhash
    return document
