"""Which servers this instance federates with: the domain block list, cached in memory.

Every inbound request asks, so the list is read from the database at most every few seconds
and changes made by another process take effect within that time.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedcop.db import SessionMaker
from fedcop.models import BlockSeverity, DomainBlock

_REFRESH_SECONDS = 5.0
_MAX_VERDICTS = 10_000


class FederationPolicy:
    def __init__(self, db: SessionMaker) -> None:
        self._db = db
        self._suspended: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        # Verdicts per domain for the list as loaded: every inbound request asks, a few
        # hundred servers send, and matching parent domains costs ~1 µs a call.
        self._verdicts: dict[str, bool] = {}

    async def is_suspended(self, domain: str) -> bool:
        """True if `domain` (host[:port]) or a parent domain is suspended.

        Blocking a domain blocks its subdomains and every port on it.
        """
        verdict = self.cached_verdict(domain)
        if verdict is None:
            await self.reload()
            verdict = self._verdict(domain)
        return verdict

    def cached_verdict(self, domain: str) -> bool | None:
        """`is_suspended` without an await while the list is fresh; None when it needs a reload."""
        if time.monotonic() - self._loaded_at > _REFRESH_SECONDS:
            return None
        return self._verdict(domain)

    def _verdict(self, domain: str) -> bool:
        verdict = self._verdicts.get(domain)
        if verdict is None:
            if len(self._verdicts) >= _MAX_VERDICTS:
                self._verdicts.clear()
            verdict = self._verdicts[domain] = domain_is_listed(domain, self._suspended)
        return verdict

    async def reload(self) -> None:
        async with self._db() as session:
            suspended = await domains_with(session, BlockSeverity.SUSPEND)
        if suspended != self._suspended:
            self._suspended, self._verdicts = suspended, {}
        self._loaded_at = time.monotonic()


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
