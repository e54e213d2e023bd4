"""Which software the servers following a group run, for the one choice that depends on it.

A group shares a member's post in one of two forms (FEP-1b12 and INTEROP §8):
- Lemmy-family servers (Lemmy, Mbin/Kbin, PieFed) want the member's *activity* announced,
  `Announce{object: Create{Page}}`; Lemmy refuses an announced bare object ("CannotReceivePage",
  https://github.com/LemmyNet/lemmy/blob/main/crates/apub/activities/src/community/announce.rs),
  Mbin unwraps an announced activity and handles it as if sent directly
  (https://github.com/MbinOrg/mbin/blob/main/src/MessageHandler/ActivityPub/Inbox/ActivityHandler.php),
  PieFed reads `Announce{Create}`
  (https://codeberg.org/rimu/pyfedi/src/branch/main/app/activitypub/routes.py).
- Everyone else, Mastodon first, wants `Announce{object: POST_ID}`, which shows as a boost;
  Mastodon ignores an announced activity.

The software is read from each server's NodeInfo and kept in `instance_software` with the time
asked. A server never asked is asked before the group's announcement is written, for at most
`LOOKUP_BUDGET_SECONDS` in all; one that does not answer in time (or at all) is recorded as
unknown, gets Mastodon's form, and is asked again a day later. Deliveries never wait for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.ap import nodeinfo
from fedcop.ap.remote import host_of
from fedcop.db import SessionMaker, insert_for
from fedcop.federation.client import FetchError
from fedcop.federation.remote_actors import RemoteActors
from fedcop.models import Actor, Follow, FollowState, InstanceSoftware, utcnow

# NodeInfo `software.name`s of servers that take FEP-1b12's Announce{activity} (see above).
ACTIVITY_ANNOUNCE_SOFTWARE = frozenset({"lemmy", "mbin", "kbin", "piefed"})
KNOWN_MAX_AGE = timedelta(days=7)
UNKNOWN_MAX_AGE = timedelta(days=1)
LOOKUP_BUDGET_SECONDS = 3.0
MAX_LOOKUPS = 16  # per announcement; the rest are asked at the next one
NODEINFO_ACCEPT = (
    'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#", application/json'
)


async def follower_domains(session: AsyncSession, actor: Actor) -> set[str]:
    """The servers an actor's followers' activities are delivered to (their inbox hosts)."""
    inbox = func.coalesce(Actor.shared_inbox_url, Actor.inbox_url)
    query = (
        select(inbox)
        .distinct()
        .join(Follow, Follow.follower_id == Actor.id)
        .where(
            Follow.followed_id == actor.id,
            Follow.state == FollowState.ACCEPTED,
            Actor.local.is_(False),
            Actor.deleted_at.is_(None),
            inbox.is_not(None),
        )
    )
    return {host_of(url) for url in (await session.scalars(query)).all() if url}


async def activity_announce_domains(
    session: AsyncSession, domains: Collection[str]
) -> frozenset[str]:
    """Those of `domains` known to run Lemmy-family software."""
    if not domains:
        return frozenset()
    query = select(InstanceSoftware.domain).where(
        InstanceSoftware.domain.in_(sorted(domains)),
        InstanceSoftware.software.in_(sorted(ACTIVITY_ANNOUNCE_SOFTWARE)),
    )
    return frozenset((await session.scalars(query)).all())


async def due_for_lookup(
    session: AsyncSession, domains: Collection[str], now: datetime
) -> list[str]:
    """Servers never asked, or asked too long ago."""
    if not domains:
        return []
    rows = await session.execute(
        select(InstanceSoftware.domain, InstanceSoftware.software, InstanceSoftware.checked_at)
        .where(InstanceSoftware.domain.in_(sorted(domains)))
    )  # fmt: skip
    fresh = {
        domain
        for domain, software, checked_at in rows
        if now - checked_at < (KNOWN_MAX_AGE if software else UNKNOWN_MAX_AGE)
    }
    return sorted(set(domains) - fresh)


async def learn_follower_software(db: SessionMaker, actors: RemoteActors, actor: Actor) -> None:
    """Ask the servers of `actor`'s followers that are due, within the time budget."""
    now = utcnow()
    async with db() as session:
        due = await due_for_lookup(session, await follower_domains(session, actor), now)
    if due:
        await learn(db, actors, due[:MAX_LOOKUPS], now)


async def learn(
    db: SessionMaker, actors: RemoteActors, domains: Iterable[str], now: datetime
) -> None:
    asked = list(domains)
    answers: dict[str, nodeinfo.Software | None] = {}

    async def ask(domain: str) -> None:
        answers[domain] = await _software_of(actors, domain)

    try:
        async with asyncio.timeout(LOOKUP_BUDGET_SECONDS), asyncio.TaskGroup() as group:
            for domain in asked:
                group.create_task(ask(domain))
    except TimeoutError:
        pass  # the silent ones are recorded as unknown below, and asked again later
    async with db.begin() as session:
        for domain in asked:
            await _record(session, domain, answers.get(domain), now)


async def _software_of(actors: RemoteActors, domain: str) -> nodeinfo.Software | None:
    try:
        links = await actors.fetch_server_json(
            domain, "/.well-known/nodeinfo", accept="application/json"
        )
        url = nodeinfo.document_url(links, domain)
        if url is None:
            return None
        return nodeinfo.software_of(
            await actors.fetch_server_json(domain, url, accept=NODEINFO_ACCEPT)
        )
    except FetchError:
        return None


async def _record(
    session: AsyncSession, domain: str, software: nodeinfo.Software | None, now: datetime
) -> None:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    values = {
        "software": software.name if software else None,
        "version": software.version if software else None,
        "checked_at": now,
    }
    statement = insert_for(dialect, InstanceSoftware).values(domain=domain, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=["domain"], set_=values))
