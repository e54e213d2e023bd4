"""The inbox endpoints: size cap, parse, checks, signature, de-duplication, a durable row, 202.

Nothing else happens inside the request (INTEROP §5); the inbox processor does the rest.
Bad input is a 4xx with a reason, never a 500 and never a half-written row.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedcop.ap.checks import InvalidActivityError, check_activity, is_self_delete
from fedcop.federation.intake import InboxRow
from fedcop.web.body import read_capped
from fedcop.web.signatures import verified_signer
from fedcop.web.state import app_state

MAX_INBOX_BYTES = 1_000_000


async def inbox(request: Request) -> Response:
    state = app_state(request)
    body = await _read_capped(request)
    try:
        activity = check_activity(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from exc
    except InvalidActivityError as exc:
        raise HTTPException(400, str(exc)) from exc
    if activity.id in state.recent_ids:
        return Response(status_code=202)  # a repeat: already stored, nothing to do
    in_flight = state.inbox_writer.pending(activity.id)
    if in_flight is not None:  # a copy is being stored right now: answer with it
        await asyncio.shield(in_flight)
        return Response(status_code=202)
    if is_self_delete(activity) and not await state.remote_actors.is_known(activity.actor):
        # An account we never saw is gone, and its key with it: nothing to fetch or keep.
        return Response(status_code=202)
    signer = await verified_signer(request, body)
    if signer.ap_id != activity.actor:
        raise HTTPException(401, f"signed by {signer.ap_id}, not by the actor {activity.actor}")
    row = InboxRow(activity.id, activity.type, activity.actor, activity.document)
    await state.inbox_writer.write(row)
    state.recent_ids.add(activity.id)
    return Response(status_code=202)


async def _read_capped(request: Request) -> bytes:
    return await read_capped(request, MAX_INBOX_BYTES, lambda reason: HTTPException(413, reason))


routes = [
    Route("/inbox", inbox, methods=["POST"]),
    Route("/users/{username}/inbox", inbox, methods=["POST"]),
    Route("/groups/{username}/inbox", inbox, methods=["POST"]),
    Route("/actor/inbox", inbox, methods=["POST"]),
]
