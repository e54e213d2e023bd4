"""Images, comments, likes and shares, follows, and reports."""

from __future__ import annotations

from starlette.responses import Response

from fedcop.services import comments, follows, reports
from fedcop.services.media import MAX_UPLOAD_BYTES, check_alt, store_image
from fedcop.web.api import present
from fedcop.web.api.endpoint import ApiRequest, read_capped
from fedcop.web.responses import JSONResponse

# Raw bytes rather than multipart: one image per request needs no form parser (and no
# python-multipart dependency), and the alt text fits in the query string.
MEDIA_CONTENT = {
    kind: {"schema": {"type": "string", "contentMediaType": kind}}
    for kind in ("image/jpeg", "image/png", "image/webp", "image/gif")
}


async def upload_media(call: ApiRequest) -> Response:
    # The alt text is checked before the upload is read: a refusal then costs no decoding.
    alt = check_alt(call.request.query_params.get("alt"))
    data = await read_capped(call.request, MAX_UPLOAD_BYTES)
    state = call.state
    media = await store_image(state.db, state.settings.media_dir, call.caller.actor_id, data, alt)
    return JSONResponse(
        {
            "id": media.id,
            "content_type": media.content_type,
            "width": media.width,
            "height": media.height,
            "alt": media.alt,
            "blurhash": media.blurhash,
        },
        201,
    )


async def create_comment(call: ApiRequest) -> Response:
    body, state = call.body, call.state
    row = await comments.comment(
        state.db,
        state.urls,
        call.caller.username,
        body["in_reply_to"],
        body["body"],
        body.get("content_warning"),
    )
    return JSONResponse(present.comment(row), 201)


async def create_reaction(call: ApiRequest) -> Response:
    body = call.body
    row = await comments.react(call.state.db, body["type"], call.caller.username, body["object"])
    return JSONResponse({"ap_id": row.ap_id, "type": row.type, "object": row.object_ap_id}, 201)


async def follow(call: ApiRequest) -> Response:
    state = call.state
    made = await follows.follow(
        state.db, state.remote_actors, call.caller.username, call.body["target"]
    )
    return JSONResponse(
        {"id": made.id, "follower": made.follower, "followed": made.followed, "state": made.state},
        201,
    )


async def unfollow(call: ApiRequest) -> Response:
    state = call.state
    await follows.unfollow(state.db, state.remote_actors, call.caller.username, call.body["target"])
    return Response(status_code=204)


async def create_report(call: ApiRequest) -> Response:
    body = call.body
    made = await reports.report(
        call.state.db, call.caller.actor_id, body["object"], body.get("comment", ""),
        forward=bool(body.get("forward", False)),
    )  # fmt: skip
    return JSONResponse(
        {
            "id": made.id,
            "object": made.object,
            "comment": made.comment,
            "created_at": present.when(made.created_at),
            "forwarded": made.forwarded,
        },
        201,
    )
