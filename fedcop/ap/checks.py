"""Checks every inbound activity must pass before it is kept (INTEROP §5). No I/O.

Same origin, always: the activity and the objects it creates, changes or deletes must live on
the actor's own server, so a server can only speak for its own users and content.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from fedcop.ap.activities import object_id_of, object_type_of
from fedcop.ap.remote import InvalidDocumentError, host_of

MAX_ID_LENGTH = 2048
# Real activities nest a few levels (Announce{Create{Note{tag[{...}]}}}); anything deeper than
# this is refused, because what is kept must still serialise when it is stored (orjson stops at
# 254 levels, json at ~1000) and when it is embedded again in an Accept or an Announce.
MAX_DEPTH = 32
_OWN_OBJECT_TYPES = frozenset({"Create", "Update", "Delete"})


class InvalidActivityError(ValueError):
    """The activity is malformed or breaks a same-origin rule; the message says which."""


class InboundActivity(NamedTuple):  # not a frozen dataclass: cheaper to build, per request
    id: str
    type: str
    actor: str
    object_id: str | None
    object_type: str | None
    document: dict[str, Any]


def check_activity(document: Any, encoded: bytes | None = None) -> InboundActivity:
    """`document` as an inbound activity, or InvalidActivityError saying what is wrong.

    `encoded` is the JSON text `document` was parsed from, if the caller has it: the depth
    check then counts its brackets instead of serialising the document again.
    """
    if not isinstance(document, dict):
        raise InvalidActivityError("the body must be a JSON object")
    activity_id = _required_url(document, "id")
    kind = document.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > 64 or not kind.isprintable():
        raise InvalidActivityError("the activity has no type")
    actor = object_id_of(document.get("actor"))
    if (
        actor is None
        or not actor.startswith(("https://", "http://"))
        or len(actor) > MAX_ID_LENGTH
        or not actor.isprintable()
    ):
        raise InvalidActivityError("the activity has no actor")
    actor_host = _host(actor)
    if not actor_host:
        raise InvalidActivityError("the activity's actor has no host")
    if _host(activity_id) != actor_host:
        raise InvalidActivityError(f"activity {activity_id} is not on its actor's server")
    activity = InboundActivity(
        id=activity_id,
        type=kind,
        actor=actor,
        object_id=object_id_of(document.get("object")),
        object_type=object_type_of(document.get("object")),
        document=document,
    )
    if activity.object_id is not None and not activity.object_id.isprintable():
        raise InvalidActivityError("the object's id has control characters")
    _check_object_origin(activity)
    _check_depth(document, encoded)
    return activity


def _check_depth(document: dict[str, Any], encoded: bytes | None = None) -> None:
    """Refuse documents nested deeper than MAX_DEPTH, cheaply for the usual shallow ones.

    Serialising with orjson (~2 µs for a typical Create) bounds the depth by the number of
    `{` and `[` in the result, so only documents with many containers are walked; a Python
    walk of every activity cost ~8x more. orjson itself refuses past 254 levels. The text
    the document was parsed from bounds it just as well (brackets inside strings only add to
    the count), so when the caller has it, nothing is serialised at all.
    """
    if encoded is None:
        try:
            encoded = orjson.dumps(document)
        except TypeError:  # past orjson's 254 levels, or an integer past 64 bits: walk it
            encoded = None
    if encoded is not None and encoded.count(b"{") + encoded.count(b"[") <= MAX_DEPTH:
        return
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidActivityError(f"the activity is nested deeper than {MAX_DEPTH} levels")
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))


def _check_object_origin(activity: InboundActivity) -> None:
    obj = activity.document.get("object")
    if activity.type in _OWN_OBJECT_TYPES:
        if activity.object_id is None:
            raise InvalidActivityError(f"{activity.type} needs an object with an id")
        if _host(activity.object_id) != _host(activity.actor):
            raise InvalidActivityError(
                f"{activity.type} of {activity.object_id} by an actor on another server"
            )
        attributed = object_id_of(obj.get("attributedTo")) if isinstance(obj, dict) else None
        if attributed is not None and _host(attributed) != _host(activity.object_id):
            raise InvalidActivityError("the object is attributed to an actor on another server")
    if activity.type == "Undo" and isinstance(obj, dict):
        undone_actor = object_id_of(obj.get("actor"))
        if undone_actor is not None and undone_actor != activity.actor:
            raise InvalidActivityError("an actor can only undo its own activities")


def _host(url: str) -> str:
    """`host_of(url)` (urlsplit's netloc, lower-cased), sliced out directly for plain URLs.

    Every activity id is new, so urlsplit's small cache misses and costs ~4 µs a call (the
    profile of the inbox showed it); this costs ~1 µs. Anything urlsplit treats specially (other
    schemes, tab/CR/LF anywhere, brackets or non-ASCII in the authority) goes to host_of, so
    the result is always the same.
    """
    if url.startswith("https://"):
        start = 8
    elif url.startswith("http://"):
        start = 7
    else:
        return _slow_host(url)
    end = len(url)
    for delimiter in "/?#":
        found = url.find(delimiter, start, end)
        if found >= 0:
            end = found
    netloc = url[start:end]
    if (
        "\t" in url
        or "\r" in url
        or "\n" in url
        or "[" in netloc
        or "]" in netloc
        or not netloc.isascii()
    ):
        return _slow_host(url)
    return netloc.lower()


def _slow_host(url: str) -> str:
    try:
        return host_of(url)
    except InvalidDocumentError as exc:  # e.g. "https://[::1/": no host to compare
        raise InvalidActivityError(f"{url[:200]!r} is not a valid URL") from exc


def is_self_delete(activity: InboundActivity) -> bool:
    """`Delete{actor}` of the actor itself: the account is gone, and so may be its key."""
    return activity.type == "Delete" and activity.object_id == activity.actor


def _required_url(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise InvalidActivityError(f"the activity's {name!r} must be an http(s) URL")
    if not value.isprintable():  # NUL and other controls: PostgreSQL text refuses NUL
        raise InvalidActivityError(f"the activity's {name!r} has control characters")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidActivityError(f"the activity's {name!r} is too long")
    return value
