"""Invitations: moderators invite local people to a group; the invitee accepts or declines."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from fedcop.services import invitations
from fedcop.services.invitations import Invitation
from fedcop.web.api import present
from fedcop.web.api.endpoint import ApiRequest
from fedcop.web.responses import JSONResponse


async def invite(call: ApiRequest) -> Response:
    made = await invitations.invite(
        call.state.db, call.path("name"), call.body["person"], call.caller.username
    )
    return JSONResponse(_present(call, made), 201)


async def my_invitations(call: ApiRequest) -> Response:
    found = await invitations.invitations_for(call.state.db, call.caller.username)
    return JSONResponse({"items": [_present(call, i) for i in found]})


async def accept(call: ApiRequest) -> Response:
    made = await invitations.accept(call.state.db, call.path("name"), call.caller.username)
    return JSONResponse(present.membership(made))


async def decline(call: ApiRequest) -> Response:
    await invitations.decline(call.state.db, call.path("name"), call.caller.username)
    return Response(status_code=204)


def _present(call: ApiRequest, made: Invitation) -> dict[str, Any]:
    return {
        "group": made.group,
        "group_handle": call.state.urls.handle(made.group_username),
        "group_name": made.group_name,
        "invitee": made.invitee,
        "invited_by": made.invited_by,
        "created_at": present.when(made.created_at),
    }
