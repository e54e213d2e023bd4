"""Which servers this instance federates with: the domain block list, cached in memory.

Every inbound request asks, so the list is read from the database at most every few seconds
and changes made by another process take effect within that time.

When the list comes due, requests go on with the verdicts they have while one reload runs
(stale-while-revalidate): every request in flight used to reload it itself at that moment,
each on a pool connection of its own, and under load (bench/inbox.py, 32 connections) that
held ~32 requests for 60-80 ms every five seconds, most of the accept path's p99. Only a list
older than `_MAX_STALE_SECONDS` (the database has been failing) makes requests wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.db import SessionMaker
from fedcop.models import BlockSeverity, DomainBlock

_REFRESH_SECONDS = 5.0
_MAX_STALE_SECONDS = 60.0
_MAX_VERDICTS = 10_000
log = logging.getLogger(__name__)


class FederationPolicy:
    def __init__(self, db: SessionMaker, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._clock = clock
        self._suspended: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        # Verdicts per domain for the list as loaded: every inbound request asks, a few
        # hundred servers send, and matching parent domains costs ~1 µs a call.
        self._verdicts: dict[str, bool] = {}
        self._reloading: asyncio.Future[None] | None = None

    async def is_suspended(self, domain: str) -> bool:
        """True if `domain` (host[:port]) or a parent domain is suspended.

        Blocking a domain blocks its subdomains and every port on it.
        """
        verdict = self.cached_verdict(domain)
        if verdict is None:
            # Shared, and shielded: one caller giving up (its request was cancelled) must not
            # cancel the reload the others wait for.
            await asyncio.shield(self._start_reload())
            verdict = self._verdict(domain)
        return verdict

    def cached_verdict(self, domain: str) -> bool | None:
        """`is_suspended` without an await; None when the list is too old to answer from.

        A list past its refresh time still answers, and starts one reload in the background.
        """
        age = self._clock() - self._loaded_at
        if age > _REFRESH_SECONDS:
            if age > _MAX_STALE_SECONDS:
                return None
            self._start_reload()
        return self._verdict(domain)

    def _verdict(self, domain: str) -> bool:
        verdict = self._verdicts.get(domain)
        if verdict is None:
            if len(self._verdicts) >= _MAX_VERDICTS:
                self._verdicts.clear()
            verdict = self._verdicts[domain] = domain_is_listed(domain, self._suspended)
        return verdict

    async def reload(self) -> None:
        """Read the list now (after a change: a reload already running may have missed it)."""
        await self._load()

    def _start_reload(self) -> asyncio.Future[None]:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.ensure_future(self._load())
            self._reloading.add_done_callback(_log_failure)
        return self._reloading

    async def _load(self) -> None:
        async with self._db() as session:
            suspended = await domains_with(session, BlockSeverity.SUSPEND)
        if suspended != self._suspended:
            self._suspended, self._verdicts = suspended, {}
        self._loaded_at = self._clock()


def _log_failure(reload: asyncio.Future[None]) -> None:
    """A background reload that failed is tried again by the next request; say why."""
    if not reload.cancelled() and reload.exception() is not None:
        log.warning("could not reload the domain block list: %s", reload.exception())


async def domains_with(session: AsyncSession, severity: BlockSeverity) -> frozenset[str]:
    """The domains blocked with this severity (each also covers its subdomains)."""
    query = select(DomainBlock.domain).where(DomainBlock.severity == severity)
    return frozenset((await session.scalars(query)).all())


def domain_is_listed(domain: str, listed: frozenset[str]) -> bool:
    """Whether `domain` (host[:port]), its host without port, or a parent domain is listed."""
    authority = domain.lower()
    if authority in listed:
        return True
    host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    parts = host.split(".")
    return any(".".join(parts[i:]) in listed for i in range(len(parts)))


async def is_silenced(session: AsyncSession, domain: str) -> bool:
    """Silenced servers federate, but their content is kept out of what the group amplifies
    and out of public pages."""
    return domain_is_listed(domain, await domains_with(session, BlockSeverity.SILENCE))
