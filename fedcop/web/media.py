"""Uploaded images, served as images and nothing else.

A user's upload must never come back as ActivityStreams JSON, or an attacker could plant a
document that peers would take as one of ours (GHSA-jhrq-qvrm-qr36). The type served is the one
stored, which the upload service only ever sets to an image type after decoding the pixels;
`Accept` is not consulted.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from fedcop.federation.access import may_see
from fedcop.models import Media, Story
from fedcop.services.media import find_media, media_path
from fedcop.web.signatures import is_signed, verified_signer
from fedcop.web.state import app_state

log = logging.getLogger(__name__)

MEDIA_HEADERS = {
    "x-content-type-options": "nosniff",
    # Opened directly, nothing in the file may run or load anything.
    "content-security-policy": "default-src 'none'; sandbox",
    # Files are content-addressed and never change under a URL.
    "cache-control": "public, max-age=31536000, immutable",
}


async def media_file(request: Request) -> Response:
    state = app_state(request)
    raw_id = request.path_params["media_id"]
    if not raw_id.isdigit() or len(raw_id) > 18:  # stay inside a BIGINT
        raise HTTPException(404, "There is no such image here.")
    media = await find_media(state.db, int(raw_id))
    if media is None or not await _may_serve(request, media):
        raise HTTPException(404, "There is no such image here.")
    path = media_path(state.settings.media_dir, media.sha256, media.content_type)
    if not await asyncio.to_thread(path.is_file):
        log.error("media %s: file %s is missing", media.id, path)
        raise HTTPException(404, "There is no such image here.")
    return FileResponse(path, media_type=media.content_type, headers=MEDIA_HEADERS)


async def _may_serve(request: Request, media: Media) -> bool:
    """Only an image whose URL was published, on a story the requester may see.

    Ids count up, so the name must carry the start of the file's hash (as every published URL
    does): walking /media/1/x, /media/2/x ... finds nothing. Unattached uploads are served to
    nobody; images of members-only stories only to members (signed requests).
    """
    if not request.path_params["filename"].startswith(media.sha256[:16]):
        return False
    if media.story_id is None:
        return False
    state = app_state(request)
    viewer = (await verified_signer(request)).actor_id if is_signed(request) else None
    async with state.db() as session:
        story = await session.get(Story, media.story_id)
        return (
            story is not None and story.deleted_at is None and await may_see(session, story, viewer)
        )


# The id finds the row; the name must start with the hash prefix (see _may_serve).
routes = [Route("/media/{media_id}/{filename}", media_file)]
