"""The inbox endpoints: size cap, parse, checks, signature, de-duplication, a durable row, 202.

Nothing else happens inside the request (INTEROP §5); the inbox processor does the rest.
Bad input is a 4xx with a reason, never a 500 and never a half-written row.

This is the hottest endpoint a server has (every activity from every follower's server lands
here), so it is a plain ASGI app working on the scope and messages: Starlette's Request,
its body stream and a Response object cost more than the rest of the checks together.
Errors are still HTTPExceptions, answered by the app's one error handler.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import asyncpg
import orjson
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from fedcop.ap.checks import InvalidActivityError, check_activity, is_self_delete
from fedcop.federation.intake import InboxRow
from fedcop.web.body import read_capped_asgi
from fedcop.web.signatures import verified_scope_signer
from fedcop.web.state import AppState

MAX_INBOX_BYTES = 1_000_000
STORAGE_ERRORS = (SQLAlchemyError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError,
                  asyncpg.InternalClientError, OSError)  # fmt: skip
log = logging.getLogger(__name__)
_ACCEPTED_START = {"type": "http.response.start", "status": 202,
                   "headers": [(b"content-length", b"0")]}  # fmt: skip
_ACCEPTED_BODY = {"type": "http.response.body", "body": b""}


async def inbox(scope: Scope, receive: Receive, send: Send) -> None:
    await accept(scope, receive)
    await send(_ACCEPTED_START)
    await send(_ACCEPTED_BODY)


async def accept(scope: Scope, receive: Receive) -> None:
    """Everything before the 202; HTTPException with the reason if it is refused."""
    state: AppState = scope["app"].state.fedcop
    body = await read_capped_asgi(scope, receive, MAX_INBOX_BYTES, _too_large)
    try:
        activity = check_activity(orjson.loads(body), body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from exc
    except InvalidActivityError as exc:
        raise HTTPException(400, str(exc)) from exc
    if activity.id in state.recent_ids:
        return  # a repeat: already stored, nothing to do
    in_flight = state.inbox_writer.pending(activity.id)
    if in_flight is not None:  # a copy is being stored right now: answer with it
        await asyncio.shield(in_flight)
        return
    if is_self_delete(activity) and not await state.remote_actors.is_known(activity.actor):
        return  # an account we never saw is gone, and its key with it: nothing to keep
    signer = await verified_scope_signer(scope, state, body)
    if signer.ap_id != activity.actor:
        raise HTTPException(401, f"signed by {signer.ap_id}, not by the actor {activity.actor}")
    # Stored as received: orjson accepted it, so it is UTF-8 and parses back to the document.
    encoded = body.decode()
    row = InboxRow(activity.id, activity.type, activity.actor, activity.document, encoded)
    try:
        await state.inbox_writer.write(row)
    except STORAGE_ERRORS as exc:
        # The database is down or restarting: a temporary problem, so 503 and a time to come
        # back (never a 4xx, which Mastodon would take as final; INTEROP §5), not a 500.
        log.warning("could not store %s: %s", activity.id, exc)
        raise HTTPException(503, "cannot store activities right now; retry later",
                            headers={"retry-after": "30"}) from exc  # fmt: skip
    state.recent_ids.add(activity.id)


def _too_large(reason: str) -> HTTPException:
    return HTTPException(413, reason)


# The inboxes, as routed below: /inbox, /actor/inbox, /users/{name}/inbox and
# /groups/{name}/inbox (a route parameter is one non-empty path segment).
_FIXED_INBOXES = frozenset({"/inbox", "/actor/inbox"})
_ACTOR_KINDS = frozenset({"users", "groups"})


def is_inbox_route(path: str) -> bool:
    if path in _FIXED_INBOXES:
        return True
    parts = path.split("/")
    return len(parts) == 4 and parts[1] in _ACTOR_KINDS and parts[2] != "" and parts[3] == "inbox"


def is_inbox_post(scope: Scope) -> bool:
    """An HTTP POST to one of the inboxes: what the front door and the load shedder take."""
    return (
        scope["type"] == "http" and scope["method"] == "POST" and is_inbox_route(route_path(scope))
    )


def route_path(scope: Scope) -> str:
    """The path below the app's mount point, as Starlette's router matches it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path


# Route treats a plain ASGI callable (not a function taking a Request) as an app of its own.
class _Endpoint:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await inbox(scope, receive, send)


_endpoint = _Endpoint()
routes = [
    Route("/inbox", _endpoint, methods=["POST"]),
    Route("/users/{username}/inbox", _endpoint, methods=["POST"]),
    Route("/groups/{username}/inbox", _endpoint, methods=["POST"]),
    Route("/actor/inbox", _endpoint, methods=["POST"]),
]
