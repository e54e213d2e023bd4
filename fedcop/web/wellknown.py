"""Discovery endpoints: WebFinger, host-meta and NodeInfo (INTEROP §1)."""

from __future__ import annotations

import time
import weakref
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedcop.ap import discovery
from fedcop.ap.discovery import NodeUsage
from fedcop.db import SessionMaker
from fedcop.models import Actor, ActorType
from fedcop.services.actors import node_usage
from fedcop.web.actor_cache import actor_documents
from fedcop.web.responses import JRD_CONTENT_TYPE, JSONResponse
from fedcop.web.state import AppState, app_state

_NODEINFO_PROFILE = 'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/{}#"'


async def webfinger(request: Request) -> Response:
    state = app_state(request)
    resource = request.query_params.get("resource", "").strip()
    if not resource:
        raise HTTPException(400, "the resource parameter is required, e.g. acct:name@host")
    username = _username_for(resource, state)
    # The row is read fresh and the JRD reused while it is unchanged (web/actor_cache.py).
    documents = actor_documents(request)
    row = await documents.rows.get(username)
    if row is None or (_is_url(resource) and row.ap_id != resource.rstrip("/")):
        # An actor's URL names the actor only as a whole: not its outbox, not a story.
        raise HTTPException(404, f"no account {resource!r} on this server")
    if row.deleted_at is not None:
        raise HTTPException(410, f"the account {resource!r} has been deleted")
    domain = state.urls.domain
    body = documents.serialised(row, "webfinger", lambda actor: _jrd(actor, domain))
    return Response(body, media_type=JRD_CONTENT_TYPE, headers={"access-control-allow-origin": "*"})


def _jrd(actor: Actor, domain: str) -> dict[str, Any]:
    return discovery.webfinger(
        f"acct:{actor.username}@{domain}",
        actor.ap_id,
        actor.ap_id,
        is_group=actor.type == ActorType.GROUP,
    )


def _username_for(resource: str, state: AppState) -> str:
    """The local username a resource names: `acct:user@host`, or the actor URL itself."""
    if _is_url(resource):
        if not state.urls.is_local(resource):
            raise HTTPException(404, f"{resource!r} is not on this server")
        return resource.rstrip("/").rsplit("/", 1)[-1]
    parsed = discovery.parse_acct(resource)
    if parsed is None:
        raise HTTPException(400, f"{resource!r} is not of the form acct:name@host")
    username, host = parsed
    if host != state.urls.domain:
        raise HTTPException(404, f"{host!r} is not this server ({state.urls.domain})")
    return username


def _is_url(resource: str) -> bool:
    return resource.startswith(("http://", "https://"))


async def host_meta(request: Request) -> Response:
    return Response(
        discovery.host_meta(app_state(request).urls.base_url),
        media_type="application/xrd+xml",
        headers={"access-control-allow-origin": "*"},
    )


async def nodeinfo_links(request: Request) -> Response:
    return JSONResponse(
        discovery.nodeinfo_links(app_state(request).urls.base_url),
        headers={"access-control-allow-origin": "*"},
    )


# NodeInfo is public and crawled over and over; its counts scan the people, stories and
# comments, so each process reuses them for a minute.
_USAGE_SECONDS = 60.0
_usage_cache: weakref.WeakKeyDictionary[SessionMaker, tuple[float, NodeUsage]] = (
    weakref.WeakKeyDictionary()
)


async def _usage(state: AppState) -> NodeUsage:
    cached = _usage_cache.get(state.db)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    usage = await node_usage(state.db)
    _usage_cache[state.db] = (time.monotonic() + _USAGE_SECONDS, usage)
    return usage


async def nodeinfo(request: Request) -> Response:
    version = request.path_params["version"]
    if version not in discovery.NODEINFO_SCHEMAS:
        raise HTTPException(404, f"NodeInfo {version} is not served; try 2.0 or 2.1")
    state = app_state(request)
    document = discovery.nodeinfo(
        version,
        await _usage(state),
        open_registrations=state.settings.open_registrations,
        metadata={
            "nodeName": state.settings.instance_name,
            "nodeDescription": state.settings.instance_description,
        },
    )
    return JSONResponse(
        document,
        headers={
            "content-type": _NODEINFO_PROFILE.format(version),
            "access-control-allow-origin": "*",
        },
    )


routes = [
    Route("/.well-known/webfinger", webfinger),
    Route("/.well-known/host-meta", host_meta),
    Route("/.well-known/nodeinfo", nodeinfo_links),
    Route("/nodeinfo/{version}", nodeinfo),
]
