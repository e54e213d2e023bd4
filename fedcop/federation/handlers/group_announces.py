"""FEP-1b12 from groups elsewhere: a group followed here announces its members' activities.

A Lemmy community (or Mbin magazine, PieFed community, ...) shares each post and comment as
`Announce{Create{Page}}` (https://codeberg.org/fediverse/fep/src/branch/main/fep/1b12/fep-1b12.md).
Only the group signed the Announce, not the author, so the announced object is never taken
as given: it is fetched from its own server (INTEROP §5), and a `Delete` counts only when that
server answers that the object is gone. Likes and the rest announced by groups are ignored.
"""

from __future__ import annotations

from fedcop.ap.activities import object_id_of, object_type_of
from fedcop.ap.checks import InboundActivity
from fedcop.ap.remote_content import CONTENT_TYPES
from fedcop.federation.access import find_post
from fedcop.federation.dispatch import DispatchTable, HandlerContext, IgnoredError, RejectedError
from fedcop.federation.handlers.content import (
    followed_here,
    mark_deleted,
    parse_post,
    store_comment,
    store_story,
)
from fedcop.federation.remote_actors import ResolveError
from fedcop.models import Actor, ActorType, Story, utcnow


async def on_announced_activity(ctx: HandlerContext, activity: InboundActivity) -> None:
    group = await ctx.actors.get(activity.actor)
    if group.type != ActorType.GROUP:
        raise IgnoredError("only a group's Announce is taken to carry a member's activity")
    async with ctx.db() as session:
        if not await followed_here(session, group):
            raise IgnoredError(f"nobody here follows {group.ap_id}")
    inner = activity.document["object"]  # a dict: the table routes on its type
    target = object_id_of(inner.get("object"))
    if target is None:
        raise RejectedError("the announced activity names no object")
    if inner.get("type") == "Delete":
        await _delete_if_gone(ctx, target)
    elif object_type_of(inner.get("object")) not in (None, *CONTENT_TYPES):
        # Lemmy's `Update{Group}` of the community itself, say: not a post.
        raise IgnoredError(f"{inner['type']} of a {inner['object']['type']} is not used here")
    else:
        await _store_or_update(ctx, group, target)


async def _store_or_update(ctx: HandlerContext, group: Actor, target: str) -> None:
    data = parse_post(await ctx.actors.fetch_object(target))
    author = await ctx.actors.get(data.author)
    async with ctx.db.begin() as session:
        if data.in_reply_to is not None:
            await store_comment(session, data, author)
            return
        existing = await find_post(session, data.ap_id)
        if isinstance(existing, Story):
            if existing.author_id != author.id:
                raise RejectedError(f"{data.ap_id} belongs to someone else")
            existing.title, existing.summary = data.title, data.summary
            existing.content, existing.content_warning = data.content, data.content_warning
            existing.edited_at = utcnow()
            return
        await store_story(session, data, author, group)


async def _delete_if_gone(ctx: HandlerContext, target: str) -> None:
    if ctx.urls.is_local(target):
        # Never fetched, so never "gone": a group elsewhere does not delete posts here.
        raise IgnoredError(f"{target} is a post of this server")
    try:
        await ctx.actors.fetch_object(target)
    except ResolveError as exc:
        if exc.temporary:
            raise  # asked again later
        if not exc.gone:
            # Served, but not as an object we take (a wrong Content-Type, say): not a sign
            # that it was deleted.
            raise IgnoredError(f"{target} is not known to be gone: {exc.reason}") from exc
        async with ctx.db.begin() as session:
            post = await find_post(session, target)
            if post is None:
                raise IgnoredError(f"{target} is not stored here") from exc
            if post.deleted_at is None:
                await mark_deleted(session, post)
        return
    raise IgnoredError(f"{target} is still served by its own server")


def register(table: DispatchTable) -> None:
    table.on("Announce", "Create", "Update", "Delete")(on_announced_activity)
