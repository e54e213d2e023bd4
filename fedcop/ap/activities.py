"""Building the activities fedcop sends, and reading the ones it receives. No I/O."""

from __future__ import annotations

import uuid
from typing import Any

from fedcop.ap.context import AS_CONTEXT


def new_activity_id(actor_id: str, kind: str) -> str:
    return f"{actor_id}#{kind.lower()}s/{uuid.uuid4()}"


def follow(actor_id: str, object_id: str, activity_id: str) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": activity_id,
        "type": "Follow",
        "actor": actor_id,
        "object": object_id,
        "to": [object_id],
    }


def respond_to_follow(kind: str, actor_id: str, follow_activity: dict[str, Any]) -> dict[str, Any]:
    """Accept or Reject of a Follow, embedding the Follow: Mastodon matches the embedded copy,
    Lemmy and GoToSocial accept either form (INTEROP §6)."""
    embedded = {k: v for k, v in follow_activity.items() if k != "@context"}
    follower = object_id_of(follow_activity.get("actor"))
    return {
        "@context": AS_CONTEXT,
        "id": new_activity_id(actor_id, kind),
        "type": kind,
        "actor": actor_id,
        "object": embedded,
        "to": [follower] if follower else [],
    }


def undo(actor_id: str, activity: dict[str, Any]) -> dict[str, Any]:
    embedded = {k: v for k, v in activity.items() if k != "@context"}
    return {
        "@context": AS_CONTEXT,
        "id": new_activity_id(actor_id, "undo"),
        "type": "Undo",
        "actor": actor_id,
        "object": embedded,
        "to": activity.get("to", []),
    }


def object_id_of(value: Any) -> str | None:
    """The id of a field that may be a URL string or an embedded object."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def object_type_of(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return str(value["type"])
    return None


def update_of_actor(actor_document: dict[str, Any], followers_url: str) -> dict[str, Any]:
    """`Update{actor}` to its followers, so that their servers refresh the profile (Mastodon
    and Lemmy replace a cached actor from an Update signed by the actor itself)."""
    document = dict(actor_document)
    context = document.pop("@context", AS_CONTEXT)
    actor_id = str(document["id"])
    return {
        "@context": context,
        "id": new_activity_id(actor_id, "update"),
        "type": "Update",
        "actor": actor_id,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [followers_url],
        "object": document,
    }


def moderator_change(
    kind: str, actor_id: str, person_id: str, group_id: str, moderators: str
) -> dict[str, Any]:
    """FEP-1b12: `Add`/`Remove` of a person to a group's moderators collection, by an owner
    (https://codeberg.org/fediverse/fep/src/branch/main/fep/1b12/fep-1b12.md#group-moderation)."""
    return {
        "@context": AS_CONTEXT,
        "id": new_activity_id(actor_id, kind),
        "type": kind,
        "actor": actor_id,
        "object": person_id,
        "target": moderators,
        "audience": group_id,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [group_id],
    }
