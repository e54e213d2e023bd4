"""Groups: create, list, read, join, approve members, list members; avatar and header."""

from __future__ import annotations

from starlette.responses import Response

from fedcop.models import GroupVisibility
from fedcop.services import actors, group_images, group_roles, groups, timeline
from fedcop.services.group_images import GroupImage
from fedcop.services.media import MAX_UPLOAD_BYTES, check_alt
from fedcop.web.api import present
from fedcop.web.api.endpoint import ApiRequest, read_capped
from fedcop.web.responses import JSONResponse


async def create_group(call: ApiRequest) -> Response:
    state, body = call.state, call.body
    await actors.create_group(
        state.db,
        state.urls,
        body["username"],
        name=body["name"],
        owner=call.caller.username,
        visibility=body.get("visibility", GroupVisibility.OPEN),
        description=body.get("description", ""),
        rules=body.get("rules", ""),
        topics=body.get("topics", []),
        posting_policy=body.get("posting", "members"),
    )
    entry = await timeline.group(state.db, body["username"], call.caller.actor_id)
    return JSONResponse(present.group(entry, state.urls, call.caller.ap_id), 201)


async def list_groups(call: ApiRequest) -> Response:
    entries = await timeline.groups(call.state.db, call.caller.actor_id)
    items = [present.group(e, call.state.urls, call.caller.ap_id) for e in entries]
    return JSONResponse({"items": items})


async def get_group(call: ApiRequest) -> Response:
    entry = await timeline.group(call.state.db, call.path("name"), call.caller.actor_id)
    return JSONResponse(present.group(entry, call.state.urls, call.caller.ap_id))


async def join_group(call: ApiRequest) -> Response:
    made = await groups.join(call.state.db, call.path("name"), call.caller.username)
    return JSONResponse(present.membership(made))


async def approve_member(call: ApiRequest) -> Response:
    made = await groups.approve(
        call.state.db, call.path("name"), call.path("person"), call.caller.username
    )
    return JSONResponse(present.membership(made))


async def set_member_role(call: ApiRequest) -> Response:
    made = await group_roles.set_role(
        call.state.db, call.path("name"), call.path("person"), call.body["role"],
        call.caller.username,
    )  # fmt: skip
    return JSONResponse(present.membership(made))


async def list_members(call: ApiRequest) -> Response:
    # Checked first: a private group's members are for its members only (404 to others).
    await timeline.group(call.state.db, call.path("name"), call.caller.actor_id)
    found = await groups.members(call.state.db, call.path("name"))
    return JSONResponse({"items": [present.membership(m) for m in found]})


async def set_icon(call: ApiRequest) -> Response:
    return await _set_image(call, GroupImage.ICON)


async def set_header(call: ApiRequest) -> Response:
    return await _set_image(call, GroupImage.IMAGE)


async def remove_icon(call: ApiRequest) -> Response:
    return await _remove_image(call, GroupImage.ICON)


async def remove_header(call: ApiRequest) -> Response:
    return await _remove_image(call, GroupImage.IMAGE)


async def _set_image(call: ApiRequest, kind: GroupImage) -> Response:
    state = call.state
    alt = call.request.query_params.get("alt")
    if alt is not None:
        check_alt(alt)  # refused before the upload is read
    data = await read_capped(call.request, MAX_UPLOAD_BYTES)
    await group_images.set_image(
        state.db, state.urls, state.settings.media_dir, call.path("name"),
        call.caller.username, kind, data, alt,
    )  # fmt: skip
    return await get_group(call)


async def _remove_image(call: ApiRequest, kind: GroupImage) -> Response:
    await group_images.remove_image(
        call.state.db, call.state.urls, call.path("name"), call.caller.username, kind
    )
    return await get_group(call)
