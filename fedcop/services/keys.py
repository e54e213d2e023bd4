"""Local actors' signing keys: loading them for requests, and rotating them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from fedcop.ap.actors import actor_to_ap
from fedcop.ap.context import PUBLIC
from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker
from fedcop.errors import NotFoundError
from fedcop.federation.client import Signer
from fedcop.models import Actor, LocalKey, OutboxActivity, utcnow
from fedcop.security.httpsig import load_private_key
from fedcop.security.keys import generate_key_pair
from fedcop.services.actors import find_local_actor


async def local_signer(db: SessionMaker, actor: Actor) -> Signer:
    async with db() as session:
        key = await session.scalar(select(LocalKey).where(LocalKey.actor_id == actor.id))
    if key is None or actor.public_key_id is None:
        raise NotFoundError(f"{actor.ap_id} has no private key")
    return Signer(key_id=actor.public_key_id, private_key=load_private_key(key.private_key_pem))


async def rotate_key(db: SessionMaker, urls: LocalUrls, username: str) -> str:
    """Replace a local actor's key pair and queue an `Update` of the actor for its followers.

    Old signatures stop verifying at once; peers that cached the old key refetch the actor on
    the first failure (or receive the Update). Returns the Update's id.
    """
    keys = generate_key_pair()
    async with db.begin() as session:
        actor = await find_local_actor(session, username)
        if actor is None:
            raise NotFoundError(f"no local actor named {username!r}")
        key = await session.get(LocalKey, actor.id)
        assert key is not None, "every local actor is created with a key"
        key.private_key_pem = keys.private_pem
        key.created_at = utcnow()
        actor.public_key_pem = keys.public_pem
        actor.updated_at = utcnow()
        update = _update_activity(actor, urls)
        session.add(
            OutboxActivity(
                ap_id=update["id"], actor_id=actor.id, type="Update", activity=update, public=True
            )
        )
    return str(update["id"])


def _update_activity(actor: Actor, urls: LocalUrls) -> dict[str, Any]:
    document = actor_to_ap(actor, urls)
    context = document.pop("@context")
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    return {
        "@context": context,
        "id": f"{actor.ap_id}#updates/{stamp}",
        "type": "Update",
        "actor": actor.ap_id,
        "to": [PUBLIC],
        "cc": [urls.followers(actor.ap_id)],
        "object": document,
    }
