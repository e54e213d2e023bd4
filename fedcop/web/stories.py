"""Stories and comments at their ids: AS2 for servers, pages for people, 410 once deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from fedcop.ap.stories import tombstone
from fedcop.federation.access import may_see
from fedcop.federation.comments import comment_document
from fedcop.federation.content import story_document
from fedcop.models import Actor, Comment, Media, Story
from fedcop.web.negotiation import wants_activity_json
from fedcop.web.responses import ActivityJSONResponse
from fedcop.web.signatures import is_signed, verified_signer
from fedcop.web.state import app_state

_NOT_HERE = "There is no such story here."
_NO_COMMENT = "There is no such comment here."
_VARY = {"vary": "Accept"}


async def story(request: Request) -> Response:
    state = app_state(request)
    ap_id = f"{state.urls.base_url}/stories/{request.path_params['token']}"
    viewer = await _viewer_id(request)
    async with state.db() as session:
        found = await session.scalar(select(Story).where(Story.ap_id == ap_id, Story.local))
        # Who may see it first: a 410 would tell anyone that a members-only story existed.
        if found is None or not await may_see(session, found, viewer):
            raise HTTPException(404, _NOT_HERE)
        if found.deleted_at is not None:
            return _gone(request, found.ap_id, found.type, found.deleted_at)
        if wants_activity_json(request):
            return ActivityJSONResponse(await story_document(session, state.urls, found))
        context = await _page_context(session, found)
    response = state.templates.TemplateResponse(request, "story.html", context)
    response.headers["vary"] = "Accept"
    return response


async def _page_context(session: Any, found: Story) -> dict[str, Any]:
    author = await session.get(Actor, found.author_id)
    group = await session.get(Actor, found.group_id) if found.group_id else None
    images = (await session.scalars(select(Media).where(Media.story_id == found.id))).all()
    comments = (
        await session.execute(
            select(Comment, Actor)
            .join(Actor, Actor.id == Comment.author_id)
            .where(
                Comment.story_id == found.id,
                Comment.deleted_at.is_(None),
                Comment.removed_at.is_(None),
            )
            .order_by(Comment.published_at, Comment.id)
            .limit(500)
        )
    ).all()
    return {
        "story": found,
        "author": author,
        "group": group,
        "images": images,
        "comments": comments,
    }


async def _viewer_id(request: Request) -> int | None:
    """The verified signer's actor row id, for members-only content; None when unsigned."""
    if not is_signed(request):
        return None
    return (await verified_signer(request)).actor_id


async def comment(request: Request) -> Response:
    """A reply written here. Servers fetch it to thread replies to it (AS2, addressed as it
    was sent); a browser is sent to its place in the story's thread."""
    state = app_state(request)
    ap_id = f"{state.urls.base_url}/comments/{request.path_params['token']}"
    viewer = await _viewer_id(request)
    async with state.db() as session:
        found = await session.scalar(select(Comment).where(Comment.ap_id == ap_id, Comment.local))
        story = await session.get(Story, found.story_id) if found is not None else None
        if (
            found is None
            or story is None
            or found.removed_at is not None
            or not await may_see(session, story, viewer)
        ):
            raise HTTPException(404, _NO_COMMENT)
        if found.deleted_at is not None or story.deleted_at is not None:
            deleted = found.deleted_at or story.deleted_at
            return _gone(request, found.ap_id, "Note", deleted, "This comment has been deleted.")
        if wants_activity_json(request):
            return ActivityJSONResponse(await comment_document(session, state.urls, found))
    # The thread's id, never its `url`: a remote story's url is whatever its server (or, for a
    # Lemmy link post, its author) chose, and this must not redirect anywhere on request.
    return RedirectResponse(f"{story.ap_id}#comment-{found.id}", status_code=303, headers=_VARY)


def _gone(
    request: Request, ap_id: str, former_type: str, deleted: Any,
    message: str = "This story has been deleted.",
) -> Response:  # fmt: skip
    if wants_activity_json(request):
        return ActivityJSONResponse(tombstone(ap_id, former_type, deleted), status_code=410)
    raise HTTPException(410, message)


routes = [Route("/stories/{token}", story), Route("/comments/{token}", comment)]
