"""JSON-LD contexts fedcop puts on what it serves."""

from __future__ import annotations

from typing import Any

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"

# Terms that are not in the ActivityStreams context but that Mastodon and Lemmy read.
# https://docs.joinmastodon.org/spec/activitypub/#as
_EXTENSIONS: dict[str, Any] = {
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "toot": "http://joinmastodon.org/ns#",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "schema": "http://schema.org#",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
}

ACTOR_CONTEXT: list[Any] = [AS_CONTEXT, SECURITY_CONTEXT, _EXTENSIONS]
