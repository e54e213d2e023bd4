"""Local actors as ActivityStreams documents (INTEROP §2)."""

from __future__ import annotations

from typing import Any

from fedcop.ap.context import ACTOR_CONTEXT
from fedcop.ap.stories import hashtag
from fedcop.ap.urls import LocalUrls
from fedcop.models.actor import Actor, ActorType


def actor_to_ap(actor: Actor, urls: LocalUrls) -> dict[str, Any]:
    """The actor document of a local person, group or the instance actor."""
    actor_id = actor.ap_id
    document: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": actor_id,
        "type": actor.type,
        "preferredUsername": actor.username,
        "name": actor.name or actor.username,
        "summary": actor.summary,
        "url": actor_id,  # one URL: AS2 for servers, the HTML profile for browsers
        "inbox": urls.inbox(actor_id),
        "outbox": urls.outbox(actor_id),
        "followers": urls.followers(actor_id),
        "following": urls.following(actor_id),
        "featured": urls.featured(actor_id),
        "endpoints": {"sharedInbox": urls.shared_inbox},
        "publicKey": {
            "id": urls.key_id(actor_id),
            "owner": actor_id,
            "publicKeyPem": actor.public_key_pem,
        },
        "manuallyApprovesFollowers": actor.manually_approves_followers,
        "discoverable": actor.discoverable,
        "indexable": actor.indexable,
        "published": _iso(actor),
        "attachment": [
            {"type": "PropertyValue", "name": field["name"], "value": field["value"]}
            for field in actor.profile_fields
        ],
    }
    if actor.icon_url:
        document["icon"] = {"type": "Image", "url": actor.icon_url}
    if actor.image_url:
        document["image"] = {"type": "Image", "url": actor.image_url}
    if actor.type == ActorType.GROUP:
        # FEP-1b12: a group lists its moderators through attributedTo (Lemmy reads it so).
        # https://codeberg.org/fediverse/fep/src/branch/main/fep/1b12/fep-1b12.md
        document["attributedTo"] = moderators_url(actor_id)
        if actor.topics:
            # The group's topics, as hashtags on the actor, the way Mastodon lists a profile's
            # featured tags (https://docs.joinmastodon.org/spec/activitypub/#Hashtag).
            document["@context"] = [*ACTOR_CONTEXT, {"Hashtag": "as:Hashtag"}]
            document["tag"] = [hashtag(urls.base_url, topic) for topic in actor.topics]
    return document


def moderators_url(group_id: str) -> str:
    return f"{group_id}/moderators"


def _iso(actor: Actor) -> str:
    return actor.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")


_MINIMAL_FIELDS = (
    *("@context", "id", "type", "preferredUsername", "url"),
    *("inbox", "outbox", "endpoints", "publicKey"),
)


def minimal_actor_to_ap(actor: Actor, urls: LocalUrls) -> dict[str, Any]:
    """The actor stripped to what verifying its signatures needs (served under authorized fetch
    to unsigned requests)."""
    full = actor_to_ap(actor, urls)
    return {name: full[name] for name in _MINIMAL_FIELDS}
