"""A group's avatar and header images, served from under the group's own URL.

Only the images the group shows now are served (an old avatar's URL answers 404), as their
stored image type with the same hardening as story media (`web/media.py`): never as AS2 JSON
(GHSA-jhrq-qvrm-qr36).
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from fedcop.errors import NotFoundError
from fedcop.services.group_images import current_image
from fedcop.services.media import media_path
from fedcop.web.media import MEDIA_HEADERS
from fedcop.web.state import app_state

_MISSING = "There is no such image here."


async def group_image(request: Request) -> Response:
    state = app_state(request)
    raw_id = request.path_params["media_id"]
    if not raw_id.isdigit() or len(raw_id) > 18:  # stay inside a BIGINT
        raise HTTPException(404, _MISSING)
    try:
        media = await current_image(
            state.db, state.urls, request.path_params["username"], int(raw_id)
        )
    except NotFoundError:
        media = None
    if media is None or not request.path_params["filename"].startswith(media.sha256[:16]):
        raise HTTPException(404, _MISSING)
    path = media_path(state.settings.media_dir, media.sha256, media.content_type)
    if not await asyncio.to_thread(path.is_file):
        raise HTTPException(404, _MISSING)
    return FileResponse(path, media_type=media.content_type, headers=MEDIA_HEADERS)


routes = [Route("/groups/{username}/images/{media_id}/{filename}", group_image)]
