"""Local actors' signing keys: loading them for requests, and rotating them."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap.actors import actor_to_ap
from fedcop.ap.context import PUBLIC
from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker
from fedcop.errors import ConflictError, NotFoundError
from fedcop.federation.client import Signer
from fedcop.federation.outbox import Audience, publish
from fedcop.models import Actor, Delivery, LocalKey, WorkState, utcnow
from fedcop.security.httpsig import load_private_key
from fedcop.security.keys import generate_key_pair
from fedcop.services.actors import find_local_actor


async def local_signer(db: SessionMaker, actor: Actor) -> Signer:
    return (await _signers_of(db, actor)).current


@dataclass(frozen=True, slots=True)
class ActorSigners:
    current: Signer
    # The key `keys rotate` replaced, for the one activity it still signs (its Update).
    previous: Signer | None = None
    rotation_activity_id: int | None = None

    def for_activity(self, activity_id: int | None) -> Signer:
        if self.previous is not None and activity_id == self.rotation_activity_id:
            return self.previous
        return self.current


async def _signers_of(db: SessionMaker, actor: Actor) -> ActorSigners:
    async with db() as session:
        key = await session.scalar(select(LocalKey).where(LocalKey.actor_id == actor.id))
    if key is None or actor.public_key_id is None:
        raise NotFoundError(f"{actor.ap_id} has no private key")
    current = Signer(key_id=actor.public_key_id, private_key=load_private_key(key.private_key_pem))
    if key.previous_private_key_pem is None:
        return ActorSigners(current)
    # The same key id: it is the key cached under that id that must verify the Update.
    previous = Signer(actor.public_key_id, load_private_key(key.previous_private_key_pem))
    return ActorSigners(current, previous, key.rotation_activity_id)


class SignerCache:
    """Local actors' signers for the delivery worker, each reloaded after a minute so that a
    key rotated by another process is picked up without a restart."""

    def __init__(self, db: SessionMaker, *, max_age_seconds: float = 60.0) -> None:
        self._db = db
        self._max_age = max_age_seconds
        self._signers: dict[int, tuple[float, ActorSigners]] = {}
        # One reload per actor at a time: when an entry expires mid-fan-out, every delivery
        # in flight would otherwise read the actor and its key at once (64 at the default
        # concurrency) for the same answer.
        self._loading: dict[int, asyncio.Task[ActorSigners]] = {}

    async def get(self, actor_id: int, activity_id: int | None = None) -> Signer:
        """The signer for `actor_id`'s activity `activity_id` (the previous key for the
        Update of a key rotation, the current one otherwise)."""
        cached = self._signers.get(actor_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1].for_activity(activity_id)
        loading = self._loading.get(actor_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(actor_id))
            self._loading[actor_id] = loading
            loading.add_done_callback(lambda _: self._loading.pop(actor_id, None))
        return (await asyncio.shield(loading)).for_activity(activity_id)

    async def _load(self, actor_id: int) -> ActorSigners:
        async with self._db() as session:
            actor = await session.get(Actor, actor_id)
        if actor is None:
            raise NotFoundError(f"no actor {actor_id}")
        signers = await _signers_of(self._db, actor)
        self._signers[actor_id] = (time.monotonic() + self._max_age, signers)
        return signers

    def forget(self, actor_id: int) -> None:
        self._signers.pop(actor_id, None)


async def rotate_key(
    db: SessionMaker, urls: LocalUrls, username: str, *, force: bool = False
) -> str:
    """Replace a local actor's key pair and send an `Update` of the actor to its followers.

    Everything is signed with the new key from now on except that Update, which is signed
    with the key it replaces (under the same key id). Mastodon refetches an actor whose
    signature fails with its cached key, but GoToSocial (0.17 and later) neither refetches a
    cached key nor accepts a changed key on a refetch: it learns the new key only from an
    Update that verifies with the key it has (`derefPubKey` and `verifyAccountKeysOnUpdate`,
    https://github.com/superseriousbusiness/gotosocial/blob/main/internal/federation/authenticate.go).
    Until that Update is processed there, its deliveries of other activities are refused and
    retried. Returns the Update's id.

    A second rotation while the first one's Update is still queued for some servers is refused
    unless `force`d: those servers hold the first key, and only that Update could move them on
    (the replaced key kept is always the one just replaced).
    """
    keys = generate_key_pair()
    async with db.begin() as session:
        actor = await find_local_actor(session, username)
        if actor is None:
            raise NotFoundError(f"no local actor named {username!r}")
        # Locked (PostgreSQL): two rotations at once would both pass the check below.
        key = await session.get(LocalKey, actor.id, with_for_update=True)
        assert key is not None, "every local actor is created with a key"
        waiting = await _still_queued(session, key.rotation_activity_id)
        if waiting and not force:
            raise ConflictError(
                f"the Update of {username}'s last key rotation is still queued for {waiting} "
                "server(s), which know only the key before it; rotate again once it is "
                "delivered (fedcop deliveries status), or force it and let them refetch"
            )
        if key.rotation_activity_id is not None:
            # The last rotation's Update advertises a key that is no longer ours, and from now
            # on would be signed with the current one: whatever of it was not delivered (given
            # up, or forced past) must never go out, even on `deliveries retry`.
            await session.execute(
                delete(Delivery).where(
                    Delivery.activity_id == key.rotation_activity_id,
                    Delivery.state != WorkState.DONE,
                )
            )
        key.previous_private_key_pem = key.private_key_pem
        key.private_key_pem = keys.private_pem
        key.created_at = utcnow()
        actor.public_key_pem = keys.public_pem
        actor.updated_at = utcnow()
        update = _update_activity(actor, urls)
        published = await publish(session, actor, update, Audience(followers=True), public=True)
        key.rotation_activity_id = published.activity.id
    return str(update["id"])


async def _still_queued(session: AsyncSession, activity_id: int | None) -> int:
    if activity_id is None:
        return 0
    count = await session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.activity_id == activity_id,
            # Skipped: its server is marked unavailable, and `deliveries retry` requeues it.
            Delivery.state.in_((WorkState.PENDING, WorkState.SKIPPED)),
        )
    )
    return count or 0


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
