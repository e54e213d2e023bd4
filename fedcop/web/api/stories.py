"""Stories: publish, read, edit, delete, withdraw consent; a group's stories; home timeline.

Paths name a story by its row `id` (short, and what keyset pages count by); bodies and
answers also carry its ActivityPub id, which is what the services and other servers use.
"""

from __future__ import annotations

import html
from typing import Any

from starlette.responses import Response

from fedcop.models import Story, utcnow
from fedcop.services import stories, timeline
from fedcop.services.stories import ConsentRecord, StoryDraft
from fedcop.web.api import present
from fedcop.web.api.endpoint import ApiError, ApiRequest, Param, query_int
from fedcop.web.api.validate import parse_datetime
from fedcop.web.responses import JSONResponse

DEFAULT_LIMIT = 20
PAGE_PARAMS = (
    Param("max_id", "only stories older than this id (a page's next_max_id)",
          {"type": "integer", "minimum": 1}),
    Param("limit", f"how many, 1 to {timeline.MAX_LIMIT} (default {DEFAULT_LIMIT})",
          {"type": "integer", "minimum": 1, "maximum": timeline.MAX_LIMIT}),
)  # fmt: skip


async def publish_story(call: ApiRequest) -> Response:
    state, caller = call.state, call.caller
    draft = _draft(call.body)
    made = await stories.publish(state.db, state.urls, caller.username, call.path("name"), draft)
    entry = await timeline.story(state.db, made.id, caller.actor_id)
    return JSONResponse(present.story(entry, state.urls, caller.actor_id), 201)


async def get_story(call: ApiRequest) -> Response:
    entry = await timeline.story(call.state.db, call.path("story_id"), call.caller.actor_id)
    return JSONResponse(present.story(entry, call.state.urls, call.caller.actor_id))


async def edit_story(call: ApiRequest) -> Response:
    """PATCH: fields left out keep their current values."""
    state, caller = call.state, call.caller
    current = await timeline.story(state.db, call.path("story_id"), caller.actor_id)
    draft = _draft({**_editable(current.story), **call.body})
    await stories.edit(state.db, state.urls, current.story.ap_id, caller.username, draft)
    entry = await timeline.story(state.db, current.story.id, caller.actor_id)
    return JSONResponse(present.story(entry, state.urls, caller.actor_id))


async def delete_story(call: ApiRequest) -> Response:
    state, caller = call.state, call.caller
    current = await timeline.story(state.db, call.path("story_id"), caller.actor_id)
    await stories.delete(state.db, state.urls, current.story.ap_id, caller.username)
    return Response(status_code=204)


async def withdraw_consent(call: ApiRequest) -> Response:
    state, caller = call.state, call.caller
    current = await timeline.story(state.db, call.path("story_id"), caller.actor_id)
    await stories.withdraw_consent(state.db, state.urls, current.story.ap_id, caller.username)
    return Response(status_code=204)


async def group_stories(call: ApiRequest) -> Response:
    max_id, limit = _page_params(call)
    result = await timeline.group_stories(
        call.state.db, call.path("name"), call.caller.actor_id, max_id, limit
    )
    return JSONResponse(present.page(result, call.state.urls))


async def home_timeline(call: ApiRequest) -> Response:
    max_id, limit = _page_params(call)
    result = await timeline.home(call.state.db, call.caller.actor_id, max_id, limit)
    return JSONResponse(present.page(result, call.state.urls))


def _page_params(call: ApiRequest) -> tuple[int | None, int]:
    max_id = query_int(call.request, "max_id")
    limit = query_int(call.request, "limit", default=DEFAULT_LIMIT) or DEFAULT_LIMIT
    if limit > timeline.MAX_LIMIT:
        raise ApiError(422, f"limit: at most {timeline.MAX_LIMIT}")
    return max_id, limit


def _draft(body: dict[str, Any]) -> StoryDraft:
    consent = body.get("consent")
    return StoryDraft(
        title=body["title"],
        summary=body["summary"],
        body=body["body"],
        pii_confirmed=body["pii_confirmed"] is True,
        visibility=body.get("visibility", "public"),
        tags=list(body.get("tags", [])),
        content_warning=body.get("content_warning"),
        consent=_consent(consent) if consent else None,
        image_ids=list(body.get("image_ids", [])),
    )


def _consent(consent: dict[str, Any]) -> ConsentRecord:
    given_at = consent.get("given_at")
    return ConsentRecord(
        given_by=consent["given_by"],
        scope=consent["scope"],
        given_at=parse_datetime(given_at, "body.consent.given_at") if given_at else utcnow(),
    )


def _editable(story: Story) -> dict[str, Any]:
    """A local story's fields as a draft would give them, for PATCH to fill in the gaps."""
    # The service stores the plain-text summary escaped inside one <p>; undo exactly that.
    summary = html.unescape(story.summary.removeprefix("<p>").removesuffix("</p>"))
    return {
        "title": story.title,
        "summary": summary,
        "body": story.source or "",
        "visibility": story.visibility,
        "tags": story.tags,
        "content_warning": story.content_warning,
    }
