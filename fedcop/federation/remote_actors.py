"""Remote actors and their keys: resolved by id, handle or key id, stored, refreshed, cached.

Concurrent requests for the same actor or key share one fetch (a popular post brings hundreds
of signed requests from one server at once). Keys are also held in memory, because every
inbound request needs one and the database need not be asked each time.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import make_transient_to_detached

from fedcop.ap import discovery
from fedcop.ap.remote import (
    ACTOR_TYPES,
    InvalidDocumentError,
    RemoteActorData,
    parse_actor,
    parse_key_document,
)
from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker, WriteStatement, engine_of, engine_writes, insert_for
from fedcop.federation.client import FederationClient, FetchError, Signer
from fedcop.models import Actor, utcnow

JRD_ACCEPT = "application/jrd+json, application/json"
_KEY_CACHE_SIZE = 20_000


class ResolveError(Exception):
    """The actor or key could not be had. `temporary` means the peer may answer later."""

    def __init__(self, reason: str, *, temporary: bool = False, status: int | None = None) -> None:
        self.reason = reason
        self.temporary = temporary
        self.status = status  # the HTTP status, when the peer answered
        super().__init__(reason)

    @property
    def gone(self) -> bool:
        """The peer's own answer that there is nothing there (any longer)."""
        return self.status in (404, 410)


@dataclass(frozen=True, slots=True)
class ActorKey:
    """What verification needs of an actor: who it is and its public key."""

    actor_id: int
    ap_id: str
    key_id: str
    public_key_pem: str
    local: bool


def _key_of(actor: Actor) -> ActorKey:
    assert actor.public_key_id is not None
    assert actor.public_key_pem is not None
    return ActorKey(actor.id, actor.ap_id, actor.public_key_id, actor.public_key_pem, actor.local)


class RemoteActors:
    def __init__(
        self,
        db: SessionMaker,
        client: FederationClient,
        urls: LocalUrls,
        signer: Signer,
        *,
        max_age: timedelta,
        remote_scheme: str = "https",
        clock: Callable[[], datetime] = utcnow,
        writes: WriteStatement | None = None,
    ) -> None:
        self._db = db
        engine = engine_of(db)
        self._dialect = engine.dialect.name
        # Where actors are stored: the app passes its inbox writer's lane (`execute_write`).
        self._write = writes or engine_writes(engine)
        self._client = client
        self._urls = urls
        self._signer = signer
        self._max_age = max_age
        self._scheme = remote_scheme
        self._clock = clock
        self._inflight: dict[str, asyncio.Future[Actor]] = {}
        self._keys: OrderedDict[str, ActorKey] = OrderedDict()

    # -- actors ----------------------------------------------------------------------------

    async def get(self, ap_id: str, *, refresh: bool = False) -> Actor:
        """The actor with this id, fetched if unknown or older than the refresh age."""
        stored = await self._stored(Actor.ap_id == ap_id)
        if stored is not None and (stored.local or not (refresh or self._is_stale(stored))):
            return stored
        try:
            return await self._once(ap_id, lambda: self._fetch_actor(ap_id))
        except ResolveError:
            if stored is not None and not refresh:
                return stored  # a stale copy beats none while its server is down
            raise

    async def by_handle(self, handle: str) -> Actor:
        """Resolve `@user@host` through WebFinger (INTEROP §1)."""
        parsed = discovery.parse_acct(handle)
        if parsed is None:
            raise ResolveError(f"{handle!r} is not a handle of the form @name@host")
        user, host = parsed
        if host == self._urls.domain:
            local = await self._stored(Actor.local, Actor.username == user.lower())
            if local is None:
                raise ResolveError(f"no local account {handle!r}")
            return local
        resource = quote(f"acct:{user}@{host}", safe=":@")
        url = f"{self._scheme}://{host}/.well-known/webfinger?resource={resource}"
        try:
            jrd = await self._client.fetch_json(url, self._signer, accept=JRD_ACCEPT)
        except FetchError as exc:
            raise ResolveError(
                f"WebFinger for {handle} failed: {exc.reason}", temporary=True
            ) from exc
        return await self.get(_self_link(jrd, handle))

    async def fetch_object(self, url: str) -> dict[str, Any]:
        """Any object from its own server (signed by the instance actor); not stored here."""
        return await self._fetch(url)

    async def fetch_server_json(self, host: str, url_or_path: str, *, accept: str) -> Any:
        """A plain JSON document of another server (NodeInfo and the like), signed by the
        instance actor. `url_or_path` is a path on `host` or a URL. Raises FetchError."""
        url = url_or_path if "://" in url_or_path else f"{self._scheme}://{host}{url_or_path}"
        return await self._client.fetch_json(url, self._signer, accept=accept)

    async def is_known(self, ap_id: str) -> bool:
        return await self._stored(Actor.ap_id == ap_id) is not None

    # -- keys ------------------------------------------------------------------------------

    def cached_key(self, key_id: str) -> ActorKey | None:
        """The key if it is in memory: no await for the inbox's usual case."""
        cached = self._keys.get(key_id)
        if cached is not None:
            self._keys.move_to_end(key_id)
        return cached

    async def key(self, key_id: str, *, refresh: bool = False) -> ActorKey:
        """The actor whose current key has this id; `refresh` forces a fetch (key rotation)."""
        cached = None if refresh else self.cached_key(key_id)
        if cached is not None:
            return cached
        # The database look-up is inside the shared section too: a caller arriving while the
        # first is between its look-up and its fetch must wait for it, not fetch again.
        label = ("refresh " if refresh else "key ") + key_id
        actor = await self._once(label, lambda: self._stored_or_fetched_key(key_id, refresh))
        return self._remember(_key_of(actor))

    async def _stored_or_fetched_key(self, key_id: str, refresh: bool) -> Actor:
        if not refresh:
            stored = await self._stored(Actor.public_key_id == key_id)
            if stored is not None and (stored.local or not self._is_stale(stored)):
                return stored
        return await self._fetch_key_owner(key_id)

    def forget_key(self, key_id: str) -> None:
        self._keys.pop(key_id, None)

    def _remember(self, key: ActorKey) -> ActorKey:
        self._keys[key.key_id] = key
        self._keys.move_to_end(key.key_id)
        while len(self._keys) > _KEY_CACHE_SIZE:
            self._keys.popitem(last=False)
        return key

    async def _fetch_key_owner(self, key_id: str) -> Actor:
        # `ACTOR#main-key` dereferences to the actor; GoToSocial's `ACTOR/main-key` to a
        # document that is (or names) the owner. Either way the owner must list this key.
        document = await self._fetch(key_id.split("#", 1)[0])
        if document.get("type") not in ACTOR_TYPES:
            try:
                owner = parse_key_document(document).owner
            except InvalidDocumentError as exc:
                raise ResolveError(f"{key_id}: {exc}") from exc
            document = await self._fetch(owner)
        data = self._parse(document)
        if data.public_key_id != key_id:
            raise ResolveError(f"{data.ap_id} does not list the key {key_id}")
        return await self._store(data)

    # -- fetching and storing --------------------------------------------------------------

    async def _fetch_actor(self, ap_id: str) -> Actor:
        data = self._parse(await self._fetch(ap_id))
        if data.ap_id != ap_id:
            raise ResolveError(f"{ap_id} answered with another actor, {data.ap_id}")
        return await self._store(data)

    async def _fetch(self, url: str) -> dict[str, Any]:
        if self._urls.is_local(url):
            raise ResolveError(f"{url} is local; it is never fetched")
        try:
            return await self._client.fetch_document(url, self._signer)
        except FetchError as exc:
            # 404 and 410 are final answers; anything else (timeouts, 5xx) may pass.
            temporary = exc.status is None or exc.status >= 500 or exc.status == 429
            raise ResolveError(
                f"fetching {url} failed: {exc.reason}", temporary=temporary, status=exc.status
            ) from exc

    def _parse(self, document: dict[str, Any]) -> RemoteActorData:
        try:
            data = parse_actor(document)
        except InvalidDocumentError as exc:
            raise ResolveError(str(exc)) from exc
        if self._urls.is_local(data.ap_id):
            raise ResolveError(f"a remote document claims the local id {data.ap_id}")
        return data

    async def _store(self, data: RemoteActorData) -> Actor:
        """Insert or update the actor in one statement that commits by itself, in the
        process's write lane (see `InboxWriter.execute_write`), and return it as stored.

        Two fetches of the same actor racing (two processes) become an insert and an update.
        """
        now = self._clock()
        fields = _fields(data, now)
        statement = (
            insert_for(self._dialect, Actor)
            .values(ap_id=data.ap_id, local=False, is_admin=False, created_at=now, **fields)
            .on_conflict_do_update(
                index_elements=[Actor.ap_id],
                set_={**fields, "updated_at": now},
                where=Actor.local.is_(False),  # never overwrite one of ours
            )
            .returning(*Actor.__table__.columns)
        )
        rows = await self._write(statement)
        if not rows:
            raise ResolveError(f"{data.ap_id} is a local actor's id")
        # The row as stored, made the detached object a session would have loaded: reading it
        # back through the pool cost more than the write (43 ms at p50 in `bench
        # unknown_keys`, each hop queued behind a busy event loop).
        actor = Actor(**rows[0]._mapping)
        make_transient_to_detached(actor)
        self.forget_key(data.public_key_id)
        return actor

    async def _stored(self, *conditions: Any) -> Actor | None:
        async with self._db() as session:
            found: Actor | None = await session.scalar(select(Actor).where(*conditions).limit(1))
            return found

    def _is_stale(self, actor: Actor) -> bool:
        return actor.fetched_at is None or actor.fetched_at < self._clock() - self._max_age

    async def _once(self, key: str, fetch: Callable[[], Awaitable[Actor]]) -> Actor:
        """Run `fetch` once however many callers ask for the same key at the same time."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Actor] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            actor = await fetch()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so a future nobody else awaited stays quiet
            raise
        else:
            future.set_result(actor)
            return actor
        finally:
            del self._inflight[key]


def _fields(data: RemoteActorData, now: datetime) -> dict[str, Any]:
    """The columns a fetch of a remote actor sets (all of them, each time)."""
    return {
        "type": data.type,
        "username": data.username,
        "domain": data.domain,
        "name": data.name,
        "summary": data.summary,  # raw remote HTML: sanitise before showing it to anyone
        "profile_fields": [],
        "inbox_url": data.inbox_url,
        "outbox_url": data.outbox_url,
        "shared_inbox_url": data.shared_inbox_url,
        "followers_url": data.followers_url,
        "following_url": data.following_url,
        "featured_url": data.featured_url,
        "profile_url": data.profile_url,
        "icon_url": data.icon_url,
        "image_url": data.image_url,
        "manually_approves_followers": data.manually_approves_followers,
        "discoverable": data.discoverable,
        "indexable": data.indexable,
        "public_key_id": data.public_key_id,
        "public_key_pem": data.public_key_pem,
        "fetched_at": now,
        "raw": data.raw,
    }


def _self_link(jrd: Any, handle: str) -> str:
    links = jrd.get("links") if isinstance(jrd, dict) else None
    for link in links if isinstance(links, list) else []:
        if (
            isinstance(link, dict)
            and link.get("rel") == "self"
            and str(link.get("type", "")).startswith(
                ("application/activity+json", "application/ld+json")
            )
            and isinstance(link.get("href"), str)
        ):
            return str(link["href"])
    raise ResolveError(f"WebFinger for {handle} names no ActivityPub actor")
