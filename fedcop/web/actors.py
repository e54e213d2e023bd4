"""Actor documents and their collections: AS2 for servers, HTML profiles for browsers."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedcop.ap.actors import actor_to_ap, minimal_actor_to_ap
from fedcop.ap.collections import inline_collection, ordered_collection, ordered_collection_page
from fedcop.federation.groups import is_member
from fedcop.models import Actor, ActorType
from fedcop.services import collections
from fedcop.services.collections import counts_only, group_moderator_ids
from fedcop.web.actor_cache import ActorRow, actor_documents, actor_from_row
from fedcop.web.negotiation import wants_activity_json
from fedcop.web.responses import AS2_CONTENT_TYPE, ActivityJSONResponse
from fedcop.web.signatures import is_signed, verified_signer
from fedcop.web.state import app_state

_TYPE_BY_PREFIX = {"users": ActorType.PERSON, "groups": ActorType.GROUP}
_PAGED_COLLECTIONS = ("outbox", "followers", "following")


def _name_and_type(request: Request) -> tuple[str, ActorType]:
    """The local username the URL names and the actor type its path prefix stands for."""
    path: str = request.scope["path"]  # not request.url: building the URL object costs ~5%
    if path.startswith("/actor"):
        return app_state(request).settings.host, ActorType.APPLICATION
    prefix = path.split("/", 2)[1]
    return request.path_params["username"], _TYPE_BY_PREFIX[prefix]


def _check_found(actor: Actor | ActorRow | None, expected: ActorType) -> None:
    """404 unless the actor exists with the type the path says; 410 once deleted."""
    if actor is None or actor.type != expected:
        raise HTTPException(404, "There is no such person or group here.")
    if actor.deleted_at is not None:
        raise HTTPException(410, "This account has been deleted.")


async def _actor_row_for(request: Request) -> ActorRow:
    """The local actor's row the URL names, checking the path prefix matches its type."""
    username, expected = _name_and_type(request)
    # The same fresh, shared read as the AS2 document (actor_cache.py): one query serves
    # every request waiting at the time, and no ORM session is needed for a read-only actor.
    row = await actor_documents(request).rows.get(username)
    _check_found(row, expected)
    assert row is not None  # _check_found raised otherwise
    return row


async def _actor_for(request: Request) -> Actor:
    return actor_from_row(await _actor_row_for(request))


async def actor_document(request: Request) -> Response:
    if wants_activity_json(request):
        return await _actor_as2(request)
    actor = await _actor_for(request)
    state = app_state(request)
    template = "group.html" if actor.type == ActorType.GROUP else "person.html"
    context = {"actor": actor, "handle": state.urls.handle(actor.username)}
    if actor.type == ActorType.GROUP:
        # A private group's page names nobody: it is read unsigned, by anyone (None reads
        # "shown to members only").
        context["moderators"] = (
            None if counts_only(actor) else await group_moderator_ids(state.db, actor)
        )
        context["stories"] = await collections.public_stories(state.db, actor)
    response = state.templates.TemplateResponse(request, template, context)
    response.headers["vary"] = "Accept"
    return response


async def _actor_as2(request: Request) -> Response:
    """The AS2 document: the row read fresh, its JSON reused while the row is unchanged
    (`actor_cache.py`)."""
    username, expected = _name_and_type(request)
    documents = actor_documents(request)
    row = await documents.rows.get(username)
    _check_found(row, expected)
    assert row is not None
    urls = app_state(request).urls
    if expected == ActorType.APPLICATION or await _fetch_is_authorized(request):
        body = documents.serialised(row, "full", lambda actor: actor_to_ap(actor, urls))
    else:
        # Authorized fetch, unsigned request: only what verifying this actor's signatures
        # needs, so two such servers never wait on each other for keys (as Mastodon does).
        body = documents.serialised(row, "minimal", lambda a: minimal_actor_to_ap(a, urls))
    response = Response(body, media_type=AS2_CONTENT_TYPE, headers={"vary": "Accept"})
    if app_state(request).settings.authorized_fetch:
        response.headers["vary"] = "Accept, Signature"
    return response


async def _fetch_is_authorized(request: Request) -> bool:
    """Under authorized fetch, whether this AS2 request carries a valid signature.

    Unsigned: False. Signed but invalid, or by a blocked server: 401/403 raised.
    """
    if not app_state(request).settings.authorized_fetch:
        return True
    if not is_signed(request):
        return False
    await verified_signer(request)
    return True


async def _require_authorized_fetch(request: Request) -> None:
    if not await _fetch_is_authorized(request):
        raise HTTPException(
            401, "this server requires signed requests (authorized fetch)", {"vary": "Signature"}
        )


def _as2(request: Request, document: dict[str, Any]) -> Response:
    response = ActivityJSONResponse(document)
    if app_state(request).settings.authorized_fetch:
        response.headers["vary"] = "Accept, Signature"
    return response


async def paged_collection(request: Request) -> Response:
    """Outbox, followers and following: a root with the count, then newest-first pages."""
    # The row, not an `Actor` built from it: building one cost ~10% of a page (py-spy).
    actor = await _actor_row_for(request)
    await _require_authorized_fetch(request)
    db = app_state(request).db
    name = request.scope["path"].rsplit("/", 1)[1]
    collection_id = f"{actor.ap_id}/{name}"
    if counts_only(actor):
        return _as2(
            request, ordered_collection(collection_id, await collections.count(db, actor.id, name))
        )
    if "page" not in request.query_params:
        total = await collections.count(db, actor.id, name)
        return _as2(
            request, ordered_collection(collection_id, total, first=f"{collection_id}?page=true")
        )
    max_id = _max_id(request)
    page = await collections.page(db, actor.id, name, max_id)
    page_id = f"{collection_id}?page=true" + (f"&max_id={max_id}" if max_id else "")
    next_page = f"{collection_id}?page=true&max_id={page.next_max_id}" if page.next_max_id else None
    return _as2(
        request, ordered_collection_page(page_id, collection_id, page.items, next_page=next_page)
    )


def _max_id(request: Request) -> int | None:
    raw = request.query_params.get("max_id")
    if raw is None:
        return None
    if not raw.isdigit():
        raise HTTPException(400, "max_id must be a whole number")
    return int(raw)


async def featured_collection(request: Request) -> Response:
    actor = await _actor_for(request)
    await _require_authorized_fetch(request)
    return _as2(request, inline_collection(f"{actor.ap_id}/collections/featured", []))


async def moderators_collection(request: Request) -> Response:
    """The group's moderators (FEP-1b12 `attributedTo`). A private group names them only to
    its members, in a request signed by one; anyone else learns how many, as with its other
    collections."""
    actor = await _actor_for(request)
    await _require_authorized_fetch(request)
    state = app_state(request)
    moderators = await group_moderator_ids(state.db, actor)
    collection_id = f"{actor.ap_id}/moderators"
    if counts_only(actor) and not await _signed_by_member(request, actor):
        document = ordered_collection(collection_id, len(moderators))
        return _as2(request, document)
    return _as2(request, inline_collection(collection_id, moderators))


async def _signed_by_member(request: Request, group: Actor) -> bool:
    if not is_signed(request):
        return False
    signer = await verified_signer(request)
    async with app_state(request).db() as session:
        return await is_member(session, group, signer.actor_id)


def _actor_routes(prefix: str) -> list[Route]:
    base = "/actor" if prefix == "actor" else f"/{prefix}/{{username}}"
    routes = [
        Route(base, actor_document),
        Route(f"{base}/collections/featured", featured_collection),
    ]
    routes += [Route(f"{base}/{name}", paged_collection) for name in _PAGED_COLLECTIONS]
    if prefix == "groups":
        routes.append(Route(f"{base}/moderators", moderators_collection))
    return routes


routes = _actor_routes("users") + _actor_routes("groups") + _actor_routes("actor")
